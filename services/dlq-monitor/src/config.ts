import { Type, type Static } from "typebox";
import { LogEnv, MetricsEnv, NatsEnv, loadConfig } from "@notify/config";
import { AlertingEnv, alertingSettings, type AlertingSettings } from "@notify/alerting";

/**
 * The DLQ monitor process: its own variable (MONITOR_CONCURRENCY) plus the alerting
 * unit's (ALERT_*, DLQ_ALERT_THRESHOLD, DLQ_CHECK_INTERVAL_MS), which it hosts. The
 * schemas are the one place defaults live.
 */
export const DlqMonitorConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...MetricsEnv,
  /** Advisories handled at once by one monitor process. */
  MONITOR_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
  ...AlertingEnv,
});
export type DlqMonitorConfig = Static<typeof DlqMonitorConfigSchema>;

/** Validates the environment; fails naming every bad variable (secrets, URLs included, are never echoed). */
export function loadDlqMonitorConfig(env: NodeJS.ProcessEnv): DlqMonitorConfig {
  return loadConfig(DlqMonitorConfigSchema, env);
}

/** Everything the monitor needs, already validated: its concurrency and the alerting unit's settings. */
export interface DlqMonitorSettings extends AlertingSettings {
  /** Advisories handled at once (MONITOR_CONCURRENCY). */
  concurrency: number;
}

export function settingsFromConfig(c: DlqMonitorConfig): DlqMonitorSettings {
  return { concurrency: c.MONITOR_CONCURRENCY, ...alertingSettings(c) };
}
