import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Every metric of the system, defined once. The dotted metric names of the original contract map as:
 *   notifications.sent.success → notifications_sent_total{status="success"}
 *   notifications.sent.failure → notifications_sent_total{status="failed"|"dead"}
 *   notifications.retry.count  → notifications_retry_total
 */
export function createMetrics(service: string, registry = new Registry()) {
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    eventsTotal: new Counter({
      name: "notifications_events_total",
      help: "Events consumed by the dispatcher, by outcome (queued, duplicate, skipped, failed, rejected, republished)",
      labelNames: ["event", "outcome"] as const,
      registers: [registry],
    }),
    sentTotal: new Counter({
      name: "notifications_sent_total",
      help: "Sends that reached a final state, by channel and status (success, failed, dead)",
      labelNames: ["channel", "status"] as const,
      registers: [registry],
    }),
    retryTotal: new Counter({
      name: "notifications_retry_total",
      help: "Retryable send failures that were scheduled for another attempt",
      labelNames: ["channel"] as const,
      registers: [registry],
    }),
    dlqTotal: new Counter({
      name: "notifications_dlq_total",
      help: "Jobs copied to the dead-letter queue, by channel and reason",
      labelNames: ["channel", "reason"] as const,
      registers: [registry],
    }),
    orphanAdvisoriesTotal: new Counter({
      name: "notifications_dlq_orphan_advisories_total",
      help: "MAX_DELIVERIES advisories whose job was already gone from SENDS on first sight (the server dropped it): the send cannot be named, an operator must reconcile",
      labelNames: ["consumer"] as const,
      registers: [registry],
    }),
    duplicatesTotal: new Counter({
      name: "notifications_duplicates_total",
      help: "Events whose business key was already claimed by another event (not re-sent)",
      registers: [registry],
    }),
    skippedTotal: new Counter({
      name: "notifications_skipped_total",
      help: "Events recorded as skipped, by reason (no_template, disabled)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    rejectedTotal: new Counter({
      name: "notifications_rejected_total",
      help: "Events rejected before dispatch (invalid envelope), by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    alertsTotal: new Counter({
      name: "notifications_alerts_total",
      help: "Alerts raised, by kind and channel",
      labelNames: ["kind", "channel"] as const,
      registers: [registry],
    }),
    e2eLatency: new Histogram({
      name: "notifications_e2e_latency_seconds",
      help: "Event occurred_at → WeChat acknowledged",
      labelNames: ["channel"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    wechatCallDuration: new Histogram({
      name: "wechat_call_duration_seconds",
      help: "WeChat API call duration by errcode (or timeout / http_5xx / network)",
      labelNames: ["api", "errcode"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    smsSendsTotal: new Counter({
      name: "sms_sends_total",
      help: "Tencent Cloud SMS SendSms calls by result (success, retryable, permanent, quota) and code (Tencent's, or timeout / network / http_5xx; unknown codes as other)",
      labelNames: ["result", "code"] as const,
      registers: [registry],
    }),
    smsCallDuration: new Histogram({
      name: "sms_call_duration_seconds",
      help: "Tencent Cloud SMS SendSms call duration by result",
      labelNames: ["result"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    consumerPending: new Gauge({
      name: "notifications_consumer_pending",
      help: "Messages not yet delivered to a consumer (lag)",
      labelNames: ["stream", "consumer"] as const,
      registers: [registry],
    }),
    consumerAckPending: new Gauge({
      name: "notifications_consumer_ack_pending",
      help: "Messages delivered but not yet acknowledged",
      labelNames: ["stream", "consumer"] as const,
      registers: [registry],
    }),
    dlqDepth: new Gauge({
      name: "notifications_dlq_depth",
      help: "Messages currently held in the DLQ stream",
      registers: [registry],
    }),
    projectorLag: new Gauge({
      name: "sendlog_projector_lag_messages",
      help: "KV revisions stored in a bucket's stream and not yet committed to the SQL send log",
      labelNames: ["stream"] as const,
      registers: [registry],
    }),
    projectorDelay: new Histogram({
      name: "sendlog_projector_delay_seconds",
      help: "KV write (server timestamp) → committed in SQL, per revision",
      labelNames: ["stream"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    projectorRevisions: new Counter({
      name: "sendlog_projector_revisions_total",
      help: "KV revisions committed to the SQL send log (redeliveries included)",
      labelNames: ["stream"] as const,
      registers: [registry],
    }),
    projectorInvalid: new Counter({
      name: "sendlog_projector_invalid_total",
      help: "KV values that could not be read as their bucket's type (kept in the history only)",
      labelNames: ["stream"] as const,
      registers: [registry],
    }),
    projectorErrors: new Counter({
      name: "sendlog_projector_errors_total",
      help: "Batches that failed to commit (retried with backoff)",
      labelNames: ["stream"] as const,
      registers: [registry],
    }),
    quotaUsed: new Gauge({
      name: "provider_quota_used",
      help: "Provider calls used today (WeChat template/send, from quota/get), per account",
      labelNames: ["channel", "account"] as const,
      registers: [registry],
    }),
    quotaLimit: new Gauge({
      name: "provider_quota_daily_limit",
      help: "Provider daily quota (WeChat template/send), per account",
      labelNames: ["channel", "account"] as const,
      registers: [registry],
    }),
    quotaUsage: new Gauge({
      name: "provider_quota_usage_ratio",
      help: "used / daily limit of the provider quota, per account (alert at QUOTA_ALERT_SHARE)",
      labelNames: ["channel", "account"] as const,
      registers: [registry],
    }),
    quotaParked: new Counter({
      name: "notifications_quota_parked_total",
      help: "Jobs parked until the provider's daily quota resets, by whether a provider call was made (called) or the known-spent quota held it (held)",
      labelNames: ["channel", "how"] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "notifications_in_flight",
      help: "Messages being processed by this process",
      labelNames: ["actor"] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
