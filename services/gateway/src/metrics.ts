import { Counter, Histogram, type Registry } from "prom-client";

/** Metrics only the gateway has, registered beside the shared ones (@notify/metrics). */
export function createGatewayMetrics(registry: Registry) {
  return {
    httpRequests: new Counter({
      name: "gateway_http_requests_total",
      help: "HTTP requests answered by the gateway, by method, route pattern and status code",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "gateway_http_request_duration_seconds",
      help: "HTTP request duration by method and route pattern",
      labelNames: ["method", "route"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: "gateway_events_published_total",
      help: "Events accepted by POST /notifications/events, by event and whether JetStream saw the id before",
      labelNames: ["event", "duplicate"] as const,
      registers: [registry],
    }),
    receipts: new Counter({
      name: "gateway_wechat_receipts_total",
      help: "WeChat delivery receipts (TEMPLATESENDJOBFINISH) by outcome: delivered, blocked, undelivered, duplicate, unknown_msgid, unknown_status, stale, refused (bad signature), too_old (outside the replay window), other_event",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    smsReports: new Counter({
      name: "gateway_sms_reports_total",
      help: "Tencent Cloud SMS status reports by report_status (SUCCESS, FAIL; none when refused) and outcome: delivered, undelivered, duplicate, unknown_sid, stale, not_ready, refused (bad token)",
      labelNames: ["report_status", "outcome"] as const,
      registers: [registry],
    }),
    dlqActions: new Counter({
      name: "gateway_dlq_actions_total",
      help: "Operator DLQ actions (replay, discard) by channel",
      labelNames: ["action", "channel"] as const,
      registers: [registry],
    }),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
