import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { REDACT_PATHS } from "@notify/log";

declare module "fastify" {
  interface FastifyRequest {
    /** The `message` of a 4xx answer, for the request's log line. */
    refusal?: string;
  }
}

/**
 * Redaction of the request line. Its fields are a closed set of scalars (below), so the
 * wildcard paths (`*.token`: a key one level down) can never match and are left out: pino
 * runs each of them on every field of every line, two thirds of the line's cost. The
 * top-level paths stay, and the URL goes through the logger's `url` serializer (secrets
 * in the query string).
 */
const LINE_REDACT = REDACT_PATHS.filter((p) => !p.startsWith("*"));

/**
 * One log line per request, when it is answered: request id, method, URL, status, time,
 * and for a 4xx the reason the client was given. Fastify's own start/finish pair is
 * turned off (`disableRequestLogging`).
 */
async function requestLog(app: FastifyInstance): Promise<void> {
  const lines = app.log.child({}, { redact: { paths: LINE_REDACT, censor: "[redacted]" } });
  app.addHook("onSend", (request, reply, payload, done) => {
    if (reply.statusCode >= 400 && reply.statusCode < 500 && typeof payload === "string") {
      try {
        const message = (JSON.parse(payload) as { message?: unknown }).message;
        if (typeof message === "string") request.refusal = message;
      } catch {
        /* not JSON: no reason to log */
      }
    }
    done(null, payload);
  });
  app.addHook("onResponse", (request, reply, done) => {
    const line = { reqId: request.id, method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...(request.refusal ? { reason: request.refusal } : {}) };
    if (reply.statusCode >= 500) lines.error(line, "request");
    else lines.info(line, "request");
    done();
  });
}

export default fp(requestLog, { name: "request-log", fastify: "5.x" });
