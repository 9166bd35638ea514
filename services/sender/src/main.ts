import { connectNats, defaultSenderBackoff } from "@notify/nats";
import { createLogger } from "@notify/log";
import { createMetrics, startHealthServer } from "@notify/metrics";
import { runMain } from "@notify/runtime";
import { createWeChatChannel } from "./channels/wechat.js";
import { loadSenderConfig } from "./config.js";
import { startSender } from "./service.js";

const config = loadSenderConfig();
const log = createLogger({ name: "sender", level: config.LOG_LEVEL });

await runMain(log, async () => {
  const nc = await connectNats(config, "sender", log);
  const metrics = createMetrics("sender");
  const topology = {
    replicas: config.NATS_REPLICAS,
    onMismatch: config.TOPOLOGY_MISMATCH,
    channels: [config.SENDER_CHANNEL],
    senderBackoffMs: config.SENDER_ACK_BACKOFF_MS?.map(Number) ?? defaultSenderBackoff(config.WECHAT_TIMEOUT_MS),
    senderMaxAckPending: config.SENDER_MAX_ACK_PENDING,
  };
  const service = await startSender({
    nc,
    log,
    metrics,
    createChannel: ({ buckets }) =>
      createWeChatChannel({
        apiBase: config.WECHAT_API_BASE,
        appId: config.WECHAT_APP_ID,
        appSecret: config.WECHAT_APP_SECRET,
        timeoutMs: config.WECHAT_TIMEOUT_MS,
        tokens: buckets.tokens,
        log,
        metrics,
        connections: config.SENDER_CONCURRENCY,
      }),
    concurrency: config.SENDER_CONCURRENCY,
    retry: { baseMs: config.RETRY_BASE_MS, maxMs: config.RETRY_MAX_MS, jitter: config.RETRY_JITTER },
    quotaParkMs: config.QUOTA_PARK_MS,
    topology,
  });
  const health = await startHealthServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    registry: metrics.registry,
    ready: () => service.ready(),
    beforeScrape: () => service.refreshGauges(),
  });
  log.info({ metrics: `${health.url}/metrics`, wechat: config.WECHAT_API_BASE }, "sender ready");
  return async () => {
    await service.close();
    await health.close();
    await nc.drain();
  };
});
