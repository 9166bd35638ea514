import { Type, type Static } from "typebox";
import { CsvList, LogEnv, MetricsEnv, NatsEnv, WeChatEnv, loadConfig } from "@notify/config";
import { SENDER_MAX_DELIVER, WECHAT_DEDUP_WINDOW_MS, defaultSenderBackoff } from "@notify/nats";
import { worstCaseRetrySpanMs } from "./retry.js";

export const SenderConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...MetricsEnv,
  ...WeChatEnv,
  /** The channel this replica sends on. Only `wechat` has a provider today. */
  SENDER_CHANNEL: Type.Enum(["wechat"], { default: "wechat" }),
  /** Jobs in flight per process: a WeChat call is I/O, so dozens per process. */
  SENDER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 64 }),
  /** Bounds jobs in flight across all replicas (the consumer's max_ack_pending). */
  SENDER_MAX_ACK_PENDING: Type.Integer({ minimum: 1, default: 1000 }),
  /** First retry delay; doubles per attempt (1s, 2s, 4s, 8s by default). */
  RETRY_BASE_MS: Type.Integer({ minimum: 1, default: 1000 }),
  RETRY_MAX_MS: Type.Integer({ minimum: 1, default: 60_000 }),
  RETRY_JITTER: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
  /**
   * Ack-wait redelivery schedule when a sender dies mid-job (the consumer's backoff),
   * at most 4 entries, each above WECHAT_TIMEOUT_MS. Default: 3×, 6×, 12×, 24× the timeout.
   */
  SENDER_ACK_BACKOFF_MS: Type.Optional(CsvList()),
  /** How long a job waits after WeChat's daily quota (45009) is exhausted. */
  QUOTA_PARK_MS: Type.Integer({ minimum: 1000, default: 15 * 60_000 }),
});
export type SenderConfig = Static<typeof SenderConfigSchema>;

export function loadSenderConfig(env: NodeJS.ProcessEnv = process.env): SenderConfig {
  const c = loadConfig(SenderConfigSchema, env);
  const backoff = c.SENDER_ACK_BACKOFF_MS?.map(Number);
  if (backoff && (backoff.length > 4 || backoff.some((b) => !Number.isFinite(b) || b <= c.WECHAT_TIMEOUT_MS))) {
    throw new Error(`SENDER_ACK_BACKOFF_MS: at most 4 numbers, each above WECHAT_TIMEOUT_MS (${c.WECHAT_TIMEOUT_MS})`);
  }
  // The whole retry schedule stays inside WeChat's client_msg_id window.
  const policy = { baseMs: c.RETRY_BASE_MS, maxMs: c.RETRY_MAX_MS, jitter: c.RETRY_JITTER };
  const span = worstCaseRetrySpanMs(policy, backoff ?? defaultSenderBackoff(c.WECHAT_TIMEOUT_MS), c.WECHAT_TIMEOUT_MS, SENDER_MAX_DELIVER);
  if (span > WECHAT_DEDUP_WINDOW_MS) {
    throw new Error(
      `WECHAT_TIMEOUT_MS, SENDER_ACK_BACKOFF_MS, RETRY_BASE_MS, RETRY_MAX_MS: the last retry can come ${Math.round(span / 1000)} s after the first, ` +
        `beyond WeChat's ${WECHAT_DEDUP_WINDOW_MS / 60_000}-minute client_msg_id window (a retry after a lost answer could deliver twice); shorten them`,
    );
  }
  return c;
}
