import { Type, type Static } from "typebox";
import { ConfigError, LogEnv, MetricsEnv, NatsEnv, loadConfig } from "@notify/config";

const MINUTE = 60_000;

export const DlqMonitorConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...MetricsEnv,
  /** Advisories handled at once by one monitor process. */
  MONITOR_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
  /** Alert when the DLQ stream holds more than this many messages. */
  DLQ_ALERT_THRESHOLD: Type.Integer({ minimum: 0, default: 100 }),
  /** How often the DLQ depth is checked (it is also checked after every dead letter). */
  DLQ_CHECK_INTERVAL_MS: Type.Integer({ minimum: 100, default: 30_000 }),
  /** Alert when a channel has more than this many failed notifications in a row (0: every failure). */
  ALERT_CONSECUTIVE_FAILURES: Type.Integer({ minimum: 0, default: 3 }),
  /** One alert per (kind, channel) within this window. */
  ALERT_DEDUP_WINDOW_MS: Type.Integer({ minimum: 0, default: 10 * MINUTE }),
  /** Facts replayed at start-up to rebuild streaks and windows; defaults to ALERT_DEDUP_WINDOW_MS. */
  ALERT_LOOKBACK_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  /**
   * Optional: alerts are also POSTed here as JSON. Only its origin is ever logged. Checked
   * apart in loadDlqMonitorConfig (an http(s) URL that parses), never by this schema.
   */
  ALERT_WEBHOOK_URL: Type.Optional(Type.String()),
  ALERT_WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
  /** Attempts after the first one; then the alert is logged as undelivered. */
  ALERT_WEBHOOK_RETRIES: Type.Integer({ minimum: 0, maximum: 20, default: 3 }),
  /** First retry delay; doubles per retry (capped at 30 s). */
  ALERT_WEBHOOK_BACKOFF_MS: Type.Integer({ minimum: 1, default: 1000 }),
});
export type DlqMonitorConfig = Static<typeof DlqMonitorConfigSchema>;

/**
 * Validates the environment (fails naming every bad variable). ALERT_WEBHOOK_URL is
 * checked apart so that its value — chat webhooks hold their secret in the path — never
 * appears in the error.
 */
export function loadDlqMonitorConfig(env: NodeJS.ProcessEnv): DlqMonitorConfig {
  const { ALERT_WEBHOOK_URL: hook, ...rest } = env;
  const problems: string[] = [];
  const variables: string[] = [];
  if (hook !== undefined && hook !== "" && !(/^https?:\/\//.test(hook) && URL.canParse(hook))) {
    problems.push("ALERT_WEBHOOK_URL: must be an http(s) URL (value not shown: it may hold a secret)");
    variables.push("ALERT_WEBHOOK_URL");
  }
  let c: DlqMonitorConfig | null = null;
  try {
    c = loadConfig(DlqMonitorConfigSchema, rest);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.unshift(...err.message.split("\n").slice(1).map((l) => l.trim()));
    variables.unshift(...err.variables);
  }
  if (problems.length || !c) throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`, variables);
  return hook ? { ...c, ALERT_WEBHOOK_URL: hook } : c;
}

export function settingsFromConfig(c: DlqMonitorConfig): DlqMonitorSettings {
  return {
    concurrency: c.MONITOR_CONCURRENCY,
    dlqAlertThreshold: c.DLQ_ALERT_THRESHOLD,
    consecutiveFailures: c.ALERT_CONSECUTIVE_FAILURES,
    dedupWindowMs: c.ALERT_DEDUP_WINDOW_MS,
    lookbackMs: c.ALERT_LOOKBACK_MS ?? c.ALERT_DEDUP_WINDOW_MS,
    dlqCheckIntervalMs: c.DLQ_CHECK_INTERVAL_MS,
    webhook: c.ALERT_WEBHOOK_URL
      ? { url: c.ALERT_WEBHOOK_URL, timeoutMs: c.ALERT_WEBHOOK_TIMEOUT_MS, retries: c.ALERT_WEBHOOK_RETRIES, backoffMs: c.ALERT_WEBHOOK_BACKOFF_MS }
      : null,
  };
}

/** Everything the monitor needs to know, already validated (main.ts maps env onto it). */
export interface DlqMonitorSettings {
  /** Advisories handled at once (MONITOR_CONCURRENCY). */
  concurrency: number;
  /** Alert when the DLQ holds more than this many messages (DLQ_ALERT_THRESHOLD). */
  dlqAlertThreshold: number;
  /** Alert when a channel has more than this many failed notifications in a row (ALERT_CONSECUTIVE_FAILURES). */
  consecutiveFailures: number;
  /** One alert per (kind, channel) per window (ALERT_DEDUP_WINDOW_MS). */
  dedupWindowMs: number;
  /** Facts replayed at start-up to rebuild streaks and windows (ALERT_LOOKBACK_MS); defaults to the dedup window. */
  lookbackMs: number;
  /** DLQ depth check period (DLQ_CHECK_INTERVAL_MS). */
  dlqCheckIntervalMs: number;
  /** Optional webhook (ALERT_WEBHOOK_*). */
  webhook: { url: string; timeoutMs: number; retries: number; backoffMs: number } | null;
}
