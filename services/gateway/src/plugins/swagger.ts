import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { toOas30Document } from "../openapi.js";

export const BEARER_SCHEME = "bearerAuth";

export const TAGS = [
  { name: "Notifications", description: "Templates and preview" },
  { name: "Templates", description: "One template: read, delete, edit history" },
  { name: "Send log", description: "Send records and their status history" },
  { name: "DLQ", description: "Dead-lettered sends: list, inspect, replay, discard" },
  { name: "Events", description: "HTTP ingress onto the event bus" },
  { name: "Operations", description: "Probes and metrics (no key needed)" },
];

/**
 * OpenAPI 3.0.3 from the route schemas, Swagger UI at /docs (with the Authorize button
 * for the bearer key) and the document at /openapi.json.
 */
async function openapi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Notification orchestrator gateway",
        description:
          "Templates, preview, send log and DLQ administration for the notification orchestrator " +
          "(NATS JetStream → WeChat template messages). Every /notifications/* route needs `Authorization: Bearer <key>`.",
        version: "0.1.0",
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          [BEARER_SCHEME]: { type: "http", scheme: "bearer", description: "One of GATEWAY_API_KEYS" },
        },
      },
    },
    transformObject: (doc) => toOas30Document("openapiObject" in doc ? doc.openapiObject : doc.swaggerObject),
  });
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    // "Try it out" stays off until clicked: a stray Execute on the upsert example must not
    // overwrite a live template. The key is kept across reloads (in this browser only).
    uiConfig: { docExpansion: "list", deepLinking: true, persistAuthorization: true, tryItOutEnabled: false },
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

export default fp(openapi, { name: "openapi", fastify: "5.x" });
