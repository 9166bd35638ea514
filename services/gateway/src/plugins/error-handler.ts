import type { FastifyError, FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { HttpError, errorCode } from "../errors.js";

/** NATS client errors that mean "the bus is not reachable right now", not a bug. */
const UNAVAILABLE = new Set(["TimeoutError", "NoResponders", "NoRespondersError", "RequestError", "ClosedConnectionError", "ConnectionError", "DrainingConnectionError"]);

function isUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  return UNAVAILABLE.has(err.name) || isUnavailable(err.cause, depth + 1);
}

/**
 * The one error handler: 4xx carry `{ error, message, details? }`; 5xx are logged with
 * their cause and answered without internals.
 */
async function errorHandler(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError | HttpError | Error, request, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.statusCode).send({ error: err.error, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) });
    }
    const e = err as FastifyError;
    if (e.validation) {
      // A filter the route does not know is a mistake to name, not to ignore silently.
      const unknown = e.validationContext === "querystring" ? e.validation.find((v) => v.keyword === "additionalProperties") : undefined;
      const name = (unknown?.params as { additionalProperty?: string } | undefined)?.additionalProperty;
      return reply.code(400).send({
        error: "bad_request",
        message: name !== undefined ? `unknown query parameter "${name}"` : e.message,
        details: e.validation.map((v) => ({ in: e.validationContext, path: v.instancePath, message: v.message, keyword: v.keyword, params: v.params })),
      });
    }
    const status = typeof e.statusCode === "number" ? e.statusCode : 500;
    if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const limit = request.routeOptions.bodyLimit;
      return reply.code(413).send({ error: errorCode(413), message: `request body too large: the limit here is ${limit} bytes` });
    }
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: errorCode(status), message: e.message });
    }
    if (isUnavailable(err)) {
      request.log.error({ err }, "NATS unavailable");
      return reply.code(503).send({ error: "service_unavailable", message: "the message bus is unavailable; retry later" });
    }
    request.log.error({ err }, "request failed");
    return reply.code(500).send({ error: "internal_error", message: "internal server error" });
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` });
  });
}

export default fp(errorHandler, { name: "error-handler", fastify: "5.x" });
