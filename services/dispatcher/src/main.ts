import { connectNats } from "@notify/nats";
import { createLogger } from "@notify/log";
import { createMetrics, startHealthServer } from "@notify/metrics";
import { runMain } from "@notify/runtime";
import { loadDispatcherConfig } from "./config.js";
import { startDispatcher } from "./service.js";

const config = loadDispatcherConfig();
const log = createLogger({ name: "dispatcher", level: config.LOG_LEVEL });

await runMain(log, async () => {
  const nc = await connectNats(config, "dispatcher", log);
  const metrics = createMetrics("dispatcher");
  const service = await startDispatcher({
    nc,
    log,
    metrics,
    channels: config.CHANNELS,
    concurrency: config.DISPATCHER_CONCURRENCY,
    topology: { replicas: config.NATS_REPLICAS, lockTtlMs: config.LOCK_TTL_MS, onMismatch: config.TOPOLOGY_MISMATCH },
    ...(config.DISPATCHER_FAULT === "exit_after_claim"
      ? {
          afterClaim: () => {
            log.warn("fault hook: exiting between claim and publish");
            process.exit(137);
          },
        }
      : {}),
  });
  const health = await startHealthServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    registry: metrics.registry,
    ready: () => service.ready(),
    beforeScrape: () => service.refreshGauges(),
  });
  log.info({ metrics: `${health.url}/metrics` }, "dispatcher ready");
  return async () => {
    await service.close();
    await health.close();
    await nc.drain();
  };
});
