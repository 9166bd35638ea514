import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";

declare module "fastify" {
  interface FastifyRequest {
    /** The `message` of a 4xx answer, for the request's log line. */
    refusal?: string;
  }
}

/**
 * One log line per request, when it is answered: method, URL (secrets in the query are
 * redacted by the logger's `url` serializer), status, time, and for a 4xx the reason the
 * client was given. Fastify's own start/finish pair is turned off (`disableRequestLogging`).
 */
async function requestLog(app: FastifyInstance): Promise<void> {
  app.addHook("onSend", async (request, reply, payload) => {
    if (reply.statusCode >= 400 && reply.statusCode < 500 && typeof payload === "string") {
      try {
        const message = (JSON.parse(payload) as { message?: unknown }).message;
        if (typeof message === "string") request.refusal = message;
      } catch {
        /* not JSON: no reason to log */
      }
    }
    return payload;
  });
  app.addHook("onResponse", async (request, reply) => {
    const line = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...(request.refusal ? { reason: request.refusal } : {}) };
    if (reply.statusCode >= 500) request.log.error(line, "request");
    else request.log.info(line, "request");
  });
}

export default fp(requestLog, { name: "request-log", fastify: "5.x" });
