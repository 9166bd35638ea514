import { runService } from "@notify/runtime";
import { createSmsChannel, smsMetrics } from "./channels/sms.js";
import { createWeChatChannel } from "./channels/wechat.js";
import { forceRefreshBudget, loadSenderConfig, retryPolicy, senderAckWaitMs } from "./config.js";
import { startSender } from "./service.js";

// The only file that reads the environment, listens and handles signals (@notify/runtime).
await runService({
  name: "sender",
  loadConfig: loadSenderConfig,
  // This sender's consumer: its ack wait follows the WeChat timeout.
  topology: (c) => ({
    channels: [c.SENDER_CHANNEL],
    senderAckWaitMs: senderAckWaitMs(c),
    senderMaxAckPending: c.SENDER_MAX_ACK_PENDING,
  }),
  start: async ({ config: c, nc, log, metrics, topology }) => {
    const service = await startSender({
      nc,
      log,
      metrics,
      topology,
      createChannel: ({ buckets }) =>
        c.SENDER_CHANNEL === "sms"
          ? createSmsChannel({
              endpoint: c.TENCENT_SMS_ENDPOINT,
              secretId: c.TENCENT_SECRET_ID!,
              secretKey: c.TENCENT_SECRET_KEY!,
              sdkAppId: c.TENCENT_SMS_SDK_APP_ID!,
              signName: c.TENCENT_SMS_SIGN_NAME!,
              region: c.TENCENT_SMS_REGION,
              timeoutMs: c.TENCENT_SMS_TIMEOUT_MS,
              log,
              connections: c.SENDER_CONCURRENCY,
              msgids: buckets.msgids,
              onResult: smsMetrics(metrics),
            })
          : createWeChatChannel({ apiBase: c.WECHAT_API_BASE, appId: c.WECHAT_APP_ID, appSecret: c.WECHAT_APP_SECRET, timeoutMs: c.WECHAT_TIMEOUT_MS, tokens: buckets.tokens, msgids: buckets.msgids, log, metrics, connections: c.SENDER_CONCURRENCY, forceRefresh: forceRefreshBudget(c) }),
      concurrency: c.SENDER_CONCURRENCY,
      retry: retryPolicy(c),
      quotaParkMs: c.QUOTA_PARK_MS,
      quotaResumeSpreadMs: c.QUOTA_RESUME_SPREAD_MS,
      quotaPoll: c.QUOTA_POLL_MS > 0 ? { intervalMs: c.QUOTA_POLL_MS, alertShare: c.QUOTA_ALERT_SHARE } : false,
    });
    return { ...service, readyFields: c.SENDER_CHANNEL === "sms" ? { sms: c.TENCENT_SMS_ENDPOINT } : { wechat: c.WECHAT_API_BASE } };
  },
});
