import { Type, type Static } from "typebox";

const MINUTE = 60_000;

/**
 * The alerting unit's environment variables: the one place their defaults live. A host
 * process (the DLQ monitor) spreads them into its own schema and maps them with
 * `alertingSettings`.
 */
export const AlertingEnv = {
  /** Alert when the DLQ stream holds more than this many messages. */
  DLQ_ALERT_THRESHOLD: Type.Integer({ minimum: 0, default: 100 }),
  /** How often the DLQ depth is checked (it is also checked after every dead letter). */
  DLQ_CHECK_INTERVAL_MS: Type.Integer({ minimum: 100, default: 30_000 }),
  /** Alert when a channel has more than this many failed notifications in a row (0: every failure). */
  ALERT_CONSECUTIVE_FAILURES: Type.Integer({ minimum: 0, default: 3 }),
  /** One alert per (kind, channel) within this window. */
  ALERT_DEDUP_WINDOW_MS: Type.Integer({ minimum: 0, default: 10 * MINUTE }),
  /** Facts replayed at start-up to rebuild streaks and windows; unset: one ALERT_DEDUP_WINDOW_MS. */
  ALERT_LOOKBACK_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  /**
   * Optional: alerts are also POSTed here as JSON. Only its origin is ever logged, and a
   * refusal never echoes the value (libs/config redacts every *_URL variable).
   */
  ALERT_WEBHOOK_URL: Type.Optional(Type.String({ pattern: "^https?://[^\\s/?#]+(?:[/?#]\\S*)?$", "x-error": "must be an http(s) URL" })),
  ALERT_WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
  /** Attempts after the first one; then the alert is logged as undelivered. */
  ALERT_WEBHOOK_RETRIES: Type.Integer({ minimum: 0, maximum: 20, default: 3 }),
  /** First retry delay; doubles per retry (capped at 30 s). */
  ALERT_WEBHOOK_BACKOFF_MS: Type.Integer({ minimum: 1, default: 1000 }),
};
const AlertingEnvSchema = Type.Object(AlertingEnv);
export type AlertingConfig = Static<typeof AlertingEnvSchema>;

/** Everything the alerting unit needs, already validated. */
export interface AlertingSettings {
  /** Alert when the DLQ holds more than this many messages (DLQ_ALERT_THRESHOLD). */
  dlqAlertThreshold: number;
  /** Alert when a channel has more than this many failed notifications in a row (ALERT_CONSECUTIVE_FAILURES). */
  consecutiveFailures: number;
  /** One alert per (kind, channel) per window (ALERT_DEDUP_WINDOW_MS). */
  dedupWindowMs: number;
  /** Facts replayed at start-up (ALERT_LOOKBACK_MS); absent: one dedup window, resolved by `Alerting` only. */
  lookbackMs?: number;
  /** DLQ depth check period (DLQ_CHECK_INTERVAL_MS). */
  dlqCheckIntervalMs: number;
  /** Optional webhook (ALERT_WEBHOOK_*). */
  webhook: { url: string; timeoutMs: number; retries: number; backoffMs: number } | null;
}

export function alertingSettings(c: AlertingConfig): AlertingSettings {
  return {
    dlqAlertThreshold: c.DLQ_ALERT_THRESHOLD,
    consecutiveFailures: c.ALERT_CONSECUTIVE_FAILURES,
    dedupWindowMs: c.ALERT_DEDUP_WINDOW_MS,
    ...(c.ALERT_LOOKBACK_MS !== undefined ? { lookbackMs: c.ALERT_LOOKBACK_MS } : {}),
    dlqCheckIntervalMs: c.DLQ_CHECK_INTERVAL_MS,
    webhook: c.ALERT_WEBHOOK_URL
      ? { url: c.ALERT_WEBHOOK_URL, timeoutMs: c.ALERT_WEBHOOK_TIMEOUT_MS, retries: c.ALERT_WEBHOOK_RETRIES, backoffMs: c.ALERT_WEBHOOK_BACKOFF_MS }
      : null,
  };
}
