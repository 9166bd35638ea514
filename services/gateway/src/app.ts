import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from "fastify";
import type { Logger } from "@notify/log";
import { createMetrics, type Metrics } from "@notify/metrics";
import { createKeyVerifier } from "./auth.js";
import type { GatewaySettings } from "./config.js";
import type { SendLogDb } from "./services/send-search.js";
import { createGatewayMetrics } from "./metrics.js";
import authPlugin from "./plugins/auth.js";
import errorHandler from "./plugins/error-handler.js";
import jsonBody from "./plugins/json-body.js";
import httpMetrics from "./plugins/http-metrics.js";
import requestLog from "./plugins/request-log.js";
import security from "./plugins/security.js";
import servicesPlugin from "./plugins/services.js";
import swaggerPlugin from "./plugins/swagger.js";
import dlqRoutes from "./routes/dlq.js";
import eventRoutes from "./routes/events.js";
import healthRoutes from "./routes/health.js";
import orderRoutes from "./routes/orders.js";
import previewRoutes from "./routes/preview.js";
import sendRoutes from "./routes/sends.js";
import templateRoutes from "./routes/templates.js";
import smsReportRoutes, { type SmsReportOptions } from "./routes/sms-report.js";
import wechatCallbackRoutes, { type WeChatCallbackOptions } from "./routes/wechat-callback.js";
import { createValidatorCompiler } from "./validator.js";

export interface AppDeps {
  nc: NatsConnection;
  /** From ensureTopology (main) or the test's own topology. */
  topology: { jsm: JetStreamManager; buckets: { templates: KV; records: KV; msgids?: KV } };
  /** WeChat's server URL settings: with them, /wechat/callback takes delivery receipts. */
  receipts?: Omit<WeChatCallbackOptions, "msgids" | "records">;
  /** Tencent SMS status reports: with a token, POST /sms/status-report?token= takes them. */
  smsReports?: Omit<SmsReportOptions, "msgids" | "records">;
  settings: GatewaySettings;
  /** pino logger (redacts authorization headers); silent when absent. */
  log?: Logger;
  /** The SQL send log behind the search routes, or its opening; absent: they answer 503. */
  sendlog?: SendLogDb | Promise<SendLogDb | null> | null;
  /** Shared metric definitions; a fresh registry when absent. */
  metrics?: Metrics;
}

export type GatewayApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Fastify's own JSON body limit for everything but the event ingress (which has its own). */
const BODY_LIMIT = 256 * 1024;

/**
 * The gateway as a Fastify instance built from plugins, in order: the error handler,
 * external wrappers (security headers, rate limit, OpenAPI + Swagger UI), app services as
 * named decorators (metrics, auth, NATS-backed stores), then routes. Call `ready()` or
 * `listen()`; closing the app does not close the NATS connection (its owner does).
 */
export function buildApp(deps: AppDeps): GatewayApp {
  const loggerInstance: FastifyBaseLogger | undefined = deps.log;
  const app = Fastify({
    loggerInstance,
    bodyLimit: BODY_LIMIT,
    // One line per answered request instead of Fastify's start/finish pair (plugins/request-log.ts).
    // (Fastify 5.8 moved the switch into a LogController; the top-level option warns FSTDEP023.)
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Bodies validated as sent, query strings and paths coerced from text (validator.ts).
  app.setValidatorCompiler(createValidatorCompiler());

  const metrics = deps.metrics ?? createMetrics("gateway");
  const gatewayMetrics = createGatewayMetrics(metrics.registry);
  const verifier = createKeyVerifier(deps.settings.apiKeys, deps.settings.auth === "on");

  void app.register(errorHandler);
  void app.register(jsonBody);
  void app.register(requestLog);
  void app.register(security, { rateLimitPerMinute: deps.settings.rateLimitPerMinute, verifier });
  void app.register(swaggerPlugin);
  void app.register(httpMetrics, { metrics: gatewayMetrics });
  void app.register(authPlugin, { verifier });
  void app.register(servicesPlugin, { nc: deps.nc, jsm: deps.topology.jsm, buckets: deps.topology.buckets, metrics, gatewayMetrics, sendlog: deps.sendlog ?? null });

  void app.register(healthRoutes);
  void app.register(templateRoutes);
  void app.register(previewRoutes);
  void app.register(sendRoutes);
  void app.register(orderRoutes);
  void app.register(dlqRoutes);
  void app.register(eventRoutes, { channels: deps.settings.channels ?? ["wechat"] });
  if (deps.receipts) {
    const msgids = deps.topology.buckets.msgids;
    if (!msgids) throw new Error("receipts need the wechat_msgids bucket (topology.buckets.msgids)");
    void app.register(wechatCallbackRoutes, { ...deps.receipts, msgids, records: deps.topology.buckets.records });
  }
  if (deps.smsReports) {
    const msgids = deps.topology.buckets.msgids;
    if (!msgids) throw new Error("SMS status reports need the wechat_msgids bucket (topology.buckets.msgids)");
    void app.register(smsReportRoutes, { ...deps.smsReports, msgids, records: deps.topology.buckets.records });
  }
  return app;
}
