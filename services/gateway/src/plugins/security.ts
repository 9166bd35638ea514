import type { IncomingMessage, ServerResponse } from "node:http";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, onRequestHookHandler } from "fastify";
import fp from "fastify-plugin";
import helmet, { type HelmetOptions } from "helmet";
import type { KeyVerifier } from "../auth.js";
import { keyIdOf } from "./auth.js";

export interface SecurityOptions {
  /** Requests per minute per API key (per client address without a valid key). */
  rateLimitPerMinute: number;
  verifier: KeyVerifier;
}

/** helmet's defaults, but plain HTTP stays usable: TLS ends at the ingress, in the cluster and locally. */
export const HELMET_OPTIONS: HelmetOptions = { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } };

/**
 * The headers helmet sets for `options`, recorded once. With no per-request CSP nonce and no
 * function-valued directive they are the same on every answer, so the gateway sets this table
 * instead of running helmet's middlewares (and re-parsing the CSP) per request.
 */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  const directives = (typeof options.contentSecurityPolicy === "object" ? options.contentSecurityPolicy.directives : undefined) ?? {};
  if (Object.values(directives).some((v) => typeof v === "function" || (Array.isArray(v) && v.some((x) => typeof x === "function")))) {
    throw new Error("a function-valued CSP directive varies per request: the headers cannot be computed once");
  }
  let failed: unknown;
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => (failed = err));
  if (failed) throw failed instanceof Error ? failed : new Error(String(failed));
  return headers;
}

/** External wrappers: security headers and rate limiting. */
async function security(app: FastifyInstance, opts: SecurityOptions): Promise<void> {
  const headers = helmetHeaders(HELMET_OPTIONS);
  const securityHeaders: onRequestHookHandler = (_request, reply, done) => {
    void reply.headers(headers);
    done();
  };
  app.addHook("onRequest", securityHeaders);
  await app.register(rateLimit, {
    global: true,
    max: opts.rateLimitPerMinute,
    timeWindow: 60_000,
    // A valid key is limited as a key (many clients may share one address behind a proxy);
    // everything else by address, so inventing keys does not buy more requests.
    keyGenerator: (request) => {
      const id = keyIdOf(request, opts.verifier);
      return id ? `key:${id}` : `ip:${request.ip}`;
    },
  });
}

export default fp(security, { name: "security", fastify: "5.x" });
