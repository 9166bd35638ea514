import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from "fastify";
import fp from "fastify-plugin";
import type { KeyVerifier } from "../auth.js";
import { httpError } from "../errors.js";
import { Errors } from "../schemas/common.js";
import { BEARER_SCHEME } from "./swagger.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The id of the bearer key that authenticated the request (a hash prefix, never the key); "auth-off" without auth. */
    apiKeyId?: string;
    /** The bearer check's verdict, once made: the key's id, false for no valid key; null before. */
    keyCheck: string | false | null;
  }
  interface FastifyInstance {
    /** onRequest hook: 401 unless the request carries a configured bearer key. */
    authenticate: onRequestHookHandler;
  }
}

export const PROTECTED_PREFIX = "/notifications";

/** The bearer key's id for this request, checked once (the rate limit and the auth hook both ask). */
export function keyIdOf(request: FastifyRequest, verifier: KeyVerifier): string | null {
  if (typeof request.keyCheck !== "string" && request.keyCheck !== false) request.keyCheck = verifier.verify(request.headers.authorization) ?? false;
  return request.keyCheck || null;
}

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
    const id = keyIdOf(request, opts.verifier);
    if (id !== null) {
      request.apiKeyId = `key:${id}`;
      return done();
    }
    void reply.header("www-authenticate", 'Bearer realm="notifications"');
    done(httpError(401, "a valid bearer key is required: Authorization: Bearer <key>"));
  };
  app.decorate("authenticate", authenticate);
  app.decorateRequest("apiKeyId", "");
  app.decorateRequest("keyCheck", null);

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
