import type { FastifyInstance, onRequestHookHandler } from "fastify";
import fp from "fastify-plugin";
import type { KeyVerifier } from "../auth.js";
import { httpError } from "../errors.js";
import { Errors } from "../schemas/common.js";
import { BEARER_SCHEME } from "./swagger.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The id of the bearer key that authenticated the request (a hash prefix, never the key); "auth-off" without auth. */
    apiKeyId?: string;
  }
  interface FastifyInstance {
    /** onRequest hook: 401 unless the request carries a configured bearer key. */
    authenticate: onRequestHookHandler;
  }
}

export const PROTECTED_PREFIX = "/notifications";

export interface AuthOptions {
  verifier: KeyVerifier;
}

/**
 * Every route under /notifications gets the bearer check and the security requirement in
 * the OpenAPI document as it is registered (an onRoute hook): a new route cannot forget it.
 */
async function auth(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const authenticate: onRequestHookHandler = (request, reply, done) => {
    if (!opts.verifier.enabled) {
      request.apiKeyId = "auth-off";
      return done();
    }
    const id = opts.verifier.verify(request.headers.authorization);
    if (id !== null) {
      request.apiKeyId = `key:${id}`;
      return done();
    }
    void reply.header("www-authenticate", 'Bearer realm="notifications"');
    done(httpError(401, "a valid bearer key is required: Authorization: Bearer <key>"));
  };
  app.decorate("authenticate", authenticate);
  app.decorateRequest("apiKeyId", "");

  app.addHook("onRoute", (route) => {
    if (route.url !== PROTECTED_PREFIX && !route.url.startsWith(`${PROTECTED_PREFIX}/`)) return;
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [authenticate, ...existing];
    const schema = route.schema ?? {};
    route.schema = {
      ...schema,
      ...(opts.verifier.enabled ? { security: [{ [BEARER_SCHEME]: [] }] } : {}),
      response: { ...((schema.response as Record<string, unknown> | undefined) ?? {}), 401: Errors[401] },
    };
  });
}

export default fp(auth, { name: "auth", fastify: "5.x" });
