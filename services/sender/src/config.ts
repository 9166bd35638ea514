import { Type, type Static } from "typebox";
import { ConfigError, LogEnv, MetricsEnv, NatsEnv, WeChatEnv, loadConfig } from "@notify/config";
import { backoffDelay, type BackoffPolicy } from "@notify/contracts";
import { SENDER_MAX_ATTEMPTS, WECHAT_DEDUP_WINDOW_MS, defaultSenderAckWait } from "@notify/nats";

export const SenderConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...MetricsEnv,
  ...WeChatEnv,
  /** The channel this replica sends on (its consumer: `sender-<channel>`); SMS senders scale on their own. */
  SENDER_CHANNEL: Type.Enum(["wechat", "sms"], { default: "wechat" }),
  /** Tencent Cloud SMS: required only when SENDER_CHANNEL=sms. */
  TENCENT_SECRET_ID: Type.Optional(Type.String({ minLength: 1 })),
  TENCENT_SECRET_KEY: Type.Optional(Type.String({ minLength: 1 })),
  TENCENT_SMS_SDK_APP_ID: Type.Optional(Type.String({ minLength: 1 })),
  TENCENT_SMS_SIGN_NAME: Type.Optional(Type.String({ minLength: 1 })),
  TENCENT_SMS_REGION: Type.String({ default: "ap-guangzhou" }),
  TENCENT_SMS_ENDPOINT: Type.String({ default: "https://sms.tencentcloudapi.com", pattern: "^https?://" }),
  TENCENT_SMS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
  /** Jobs in flight per process: a WeChat call is I/O, so dozens per process. */
  SENDER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 4096, default: 64 }),
  /** Bounds jobs in flight across all replicas (the consumer's max_ack_pending). */
  SENDER_MAX_ACK_PENDING: Type.Integer({ minimum: 1, default: 1000 }),
  /** Wait after failed attempt n: RETRY_BASE_MS·2^(n-1) ± RETRY_JITTER, capped at RETRY_MAX_MS (1, 2, 4, 8 s by default). */
  RETRY_BASE_MS: Type.Integer({ minimum: 1, default: 1000 }),
  RETRY_MAX_MS: Type.Integer({ minimum: 1, default: 60_000 }),
  RETRY_JITTER: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
  /**
   * The consumer's ack wait: when a sender dies mid-job, another replica gets the job after
   * this long. Above WECHAT_TIMEOUT_MS; default 3× WECHAT_TIMEOUT_MS (at least 5 s).
   */
  SENDER_ACK_WAIT_MS: Type.Optional(Type.Integer({ minimum: 1000 })),
  /**
   * Forced access-token refreshes (after WeChat refuses a token stable_token keeps handing
   * back), shared by all replicas through KV: at most one per interval and a daily cap below
   * WeChat's 20. Past the budget the sends wait and a `token_refresh_budget` alert fires.
   */
  WECHAT_FORCE_REFRESH_INTERVAL_MS: Type.Integer({ minimum: 1000, default: 30_000 }),
  WECHAT_FORCE_REFRESH_DAILY_CAP: Type.Integer({ minimum: 0, maximum: 19, default: 15 }),
  /** How long a job waits after a provider quota refusal that names no reset time (SMS limits); WeChat's 45009 waits for midnight Beijing time. */
  QUOTA_PARK_MS: Type.Integer({ minimum: 1000, default: 15 * 60_000 }),
  /** Parked jobs wake spread over this long after the quota resets (no burst at midnight). */
  QUOTA_RESUME_SPREAD_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 60_000 }),
  /** One replica (a KV lease) reads WeChat's quota/get this often; 0 = off. */
  QUOTA_POLL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 60_000 }),
  /** Alert (`quota_usage`) once today's used / limit reaches this share. */
  QUOTA_ALERT_SHARE: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.8 }),
});
export type SenderConfig = Static<typeof SenderConfigSchema>;

/** What an SMS sender cannot start without (the error names each one missing). */
export const SMS_CREDENTIALS = ["TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_SIGN_NAME"] as const;

/** The retry schedule as configured. */
export function retryPolicy(c: SenderConfig): BackoffPolicy {
  return { baseMs: c.RETRY_BASE_MS, maxMs: c.RETRY_MAX_MS, jitter: c.RETRY_JITTER };
}

/** The forced token refresh budget as configured. */
export function forceRefreshBudget(c: SenderConfig): { minIntervalMs: number; dailyCap: number } {
  return { minIntervalMs: c.WECHAT_FORCE_REFRESH_INTERVAL_MS, dailyCap: c.WECHAT_FORCE_REFRESH_DAILY_CAP };
}

export function senderAckWaitMs(c: SenderConfig): number {
  return c.SENDER_ACK_WAIT_MS ?? defaultSenderAckWait(c.WECHAT_TIMEOUT_MS);
}

/**
 * The longest a job can take from its first attempt to its last: each gap is at most the
 * ack wait (a call, or a dead sender) plus the longest nak delay the policy allows.
 */
export function retrySpanBoundMs(policy: BackoffPolicy, ackWaitMs: number, maxAttempts = SENDER_MAX_ATTEMPTS): number {
  let span = 0;
  for (let n = 1; n < maxAttempts; n++) span += ackWaitMs + backoffDelay(n, policy, () => 1);
  return span;
}

export function loadSenderConfig(env: NodeJS.ProcessEnv = process.env): SenderConfig {
  if (env.SENDER_ACK_BACKOFF_MS) {
    throw new ConfigError("invalid configuration:\n  SENDER_ACK_BACKOFF_MS: removed (the consumer no longer has a backoff); set SENDER_ACK_WAIT_MS instead, or nothing", ["SENDER_ACK_BACKOFF_MS"]);
  }
  const c = loadConfig(SenderConfigSchema, env);
  if (c.SENDER_CHANNEL === "sms") {
    const missing = SMS_CREDENTIALS.filter((k) => !c[k]);
    if (missing.length) throw new ConfigError(`invalid configuration:\n  ${missing.map((k) => `${k}: required when SENDER_CHANNEL=sms (not set)`).join("\n  ")}`, missing);
    if (senderAckWaitMs(c) <= c.TENCENT_SMS_TIMEOUT_MS) {
      throw new ConfigError(`invalid configuration:\n  SENDER_ACK_WAIT_MS: must exceed TENCENT_SMS_TIMEOUT_MS (${c.TENCENT_SMS_TIMEOUT_MS})`, ["SENDER_ACK_WAIT_MS"]);
    }
  }
  const ackWait = senderAckWaitMs(c);
  if (ackWait <= c.WECHAT_TIMEOUT_MS) {
    throw new ConfigError(`invalid configuration:\n  SENDER_ACK_WAIT_MS: must exceed WECHAT_TIMEOUT_MS (${c.WECHAT_TIMEOUT_MS}), got ${ackWait}`, ["SENDER_ACK_WAIT_MS"]);
  }
  // Every retry must land inside WeChat's client_msg_id window, or a retry after a lost
  // answer could deliver the message twice.
  const span = retrySpanBoundMs(retryPolicy(c), ackWait);
  if (span > WECHAT_DEDUP_WINDOW_MS) {
    const vars = ["RETRY_BASE_MS", "RETRY_MAX_MS", "SENDER_ACK_WAIT_MS", "WECHAT_TIMEOUT_MS"];
    throw new ConfigError(
      `invalid configuration:\n  ${vars.join(", ")}: the last retry can come ${Math.round(span / 1000)} s after the first, ` +
        `beyond WeChat's ${WECHAT_DEDUP_WINDOW_MS / 60_000}-minute client_msg_id window (a retry after a lost answer could deliver twice); shorten them`,
      vars,
    );
  }
  return c;
}
