import helmet from "@fastify/helmet";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { KeyVerifier } from "../auth.js";

export interface SecurityOptions {
  /** Requests per minute per API key (per client address without a valid key). */
  rateLimitPerMinute: number;
  verifier: KeyVerifier;
}

/** External wrappers: security headers and rate limiting. */
async function security(app: FastifyInstance, opts: SecurityOptions): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        // The gateway speaks plain HTTP inside the cluster and locally; TLS ends at the ingress.
        upgradeInsecureRequests: null,
      },
    },
  });
  await app.register(rateLimit, {
    global: true,
    max: opts.rateLimitPerMinute,
    timeWindow: 60_000,
    // A valid key is limited as a key (many clients may share one address behind a proxy);
    // everything else by address, so inventing keys does not buy more requests.
    keyGenerator: (request) => {
      const id = opts.verifier.verify(request.headers.authorization);
      return id ? `key:${id}` : `ip:${request.ip}`;
    },
  });
}

export default fp(security, { name: "security", fastify: "5.x" });
