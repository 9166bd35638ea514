import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { GatewayMetrics } from "../metrics.js";

/** Counts every answered request by route pattern (never the raw URL: bounded labels). */
async function httpMetrics(app: FastifyInstance, opts: { metrics: GatewayMetrics }): Promise<void> {
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    opts.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    opts.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });
}

export default fp(httpMetrics, { name: "http-metrics", fastify: "5.x" });
