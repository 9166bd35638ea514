import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { HealthResponse, ReadyResponse } from "../schemas/health.js";

/** Probes and metrics: open (no key), for Kubernetes and Prometheus. */
const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // A newcomer who opens the bare address lands on the API's documentation.
  app.get("/", { schema: { hide: true } }, async (_request, reply) => reply.redirect("/docs"));

  app.get(
    "/healthz",
    { schema: { tags: ["Operations"], summary: "Liveness: the process is up", response: { 200: HealthResponse } } },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        tags: ["Operations"],
        summary: "Readiness: NATS connected and the buckets reachable",
        response: { 200: ReadyResponse("Ready"), 503: ReadyResponse("Not ready") },
      },
    },
    async (_request, reply) => {
      const checks = await app.notify.ready();
      const ok = checks.nats && checks.buckets;
      return reply.code(ok ? 200 : 503).send({ status: ok ? "ready" : "not_ready", checks });
    },
  );

  app.get(
    "/metrics",
    {
      schema: {
        tags: ["Operations"],
        summary: "Prometheus metrics",
        response: { 200: { description: "Prometheus text exposition", content: { "text/plain": { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => {
      const { metrics, dlq } = app.notify;
      await dlq.depth().then(
        (n) => metrics.dlqDepth.set(n),
        () => undefined,
      );
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
};

export default healthRoutes;
