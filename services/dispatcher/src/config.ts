import { Type, type Static } from "typebox";
import { ChannelsEnv, LogEnv, MetricsEnv, NatsEnv, loadConfig } from "@notify/config";

export const DispatcherConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...MetricsEnv,
  /** Events handled at once by one dispatcher process. */
  DISPATCHER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 256 }),
  ...ChannelsEnv,
  /** How long an idempotency claim lives (the notification_locks bucket TTL). */
  LOCK_TTL_MS: Type.Integer({ minimum: 0, default: 30 * 24 * 3600 * 1000 }),
});
export type DispatcherConfig = Static<typeof DispatcherConfigSchema>;

export function loadDispatcherConfig(env: NodeJS.ProcessEnv = process.env): DispatcherConfig {
  return loadConfig(DispatcherConfigSchema, env);
}
