import type { KV } from "@nats-io/kv";
import { msgidKey } from "@notify/contracts";
import type { Logger } from "@notify/log";
import { WECHAT_DEDUP_WINDOW_MS } from "@notify/nats";
import type { Metrics } from "@notify/metrics";
import { TOKEN_REFRESH_BUDGET_CODE, WeChatClient, isAccountConfigErrcode, type RefreshBudgetLimits } from "@notify/wechat";
import type { Channel } from "./channel.js";
import { rememberSend } from "./provider-ids.js";

export interface WeChatChannelOptions {
  apiBase: string;
  appId: string;
  appSecret: string;
  timeoutMs: number;
  /** The shared `wechat_tokens` bucket: every replica uses one access token. */
  tokens: KV;
  log: Logger;
  metrics: Metrics;
  /** Sockets to WeChat; defaults to the sender's concurrency. */
  connections?: number;
  /** Forced token refreshes across all replicas (default one per 30 s, 15 a day). */
  forceRefresh?: Partial<RefreshBudgetLimits>;
  /** `wechat_msgids`: msgid → send_id, where the gateway's receipt handler finds the send. */
  msgids?: KV;
  /** Epoch ms now (tests): when 45009's quota resets. */
  now?: () => number;
}

/** WeChat template messages as a delivery channel. */
export function createWeChatChannel(o: WeChatChannelOptions): Channel {
  const client = new WeChatClient({
    appId: o.appId,
    appSecret: o.appSecret,
    apiBase: o.apiBase,
    timeoutMs: o.timeoutMs,
    tokenBucket: o.tokens,
    log: o.log,
    ...(o.connections ? { connections: o.connections } : {}),
    ...(o.forceRefresh ? { forceRefresh: o.forceRefresh } : {}),
    onCall: (code, ms, endpoint) => o.metrics.wechatCallDuration.observe({ api: endpoint, errcode: String(code) }, ms / 1000),
    ...(o.now ? { now: o.now } : {}),
  });
  return {
    name: "wechat",
    account: o.appId,
    dedupWindowMs: WECHAT_DEDUP_WINDOW_MS,
    quota: () => client.quota(),
    async send(job) {
      const r = await client.sendTemplate({ ...job.payload, client_msg_id: job.send_id });
      if (r.kind === "success") {
        await rememberSend(o.msgids, msgidKey(r.msgid), job, o.log);
        return { kind: "success", providerMsgId: r.msgid, code: r.code };
      }
      return {
        kind: r.kind,
        code: r.code,
        error: r.error,
        ...(r.retryAfterMs !== undefined ? { retryAfterMs: r.retryAfterMs } : {}),
        ...(r.retryAt !== undefined ? { retryAt: r.retryAt } : {}),
        ...(r.uncertain ? { uncertain: true as const } : {}),
        ...(r.code === TOKEN_REFRESH_BUDGET_CODE ? { alert: "token_refresh_budget" as const } : isAccountConfigErrcode(r.errcode) ? { alert: "account_config" as const } : {}),
      };
    },
    close: () => client.close(),
  };
}
