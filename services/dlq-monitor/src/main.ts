import { connectNats } from "@notify/nats";
import { createLogger } from "@notify/log";
import { createMetrics, startHealthServer } from "@notify/metrics";
import { runMain } from "@notify/runtime";
import { loadDlqMonitorConfig, settingsFromConfig, type DlqMonitorConfig } from "./config.js";
import { createDlqMonitor } from "./service.js";

// The only file that reads the environment, listens, or installs signal handlers.
let config: DlqMonitorConfig;
try {
  config = loadDlqMonitorConfig(process.env);
} catch (err) {
  // Fail fast with a message naming the variable (never its secret value).
  process.stderr.write(`dlq-monitor: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
const log = createLogger({ name: "dlq-monitor", level: config.LOG_LEVEL, redact: ["config.ALERT_WEBHOOK_URL", "*.ALERT_WEBHOOK_URL"] });

await runMain(log, async () => {
  const nc = await connectNats(config, "dlq-monitor", log);
  const metrics = createMetrics("dlq-monitor");
  const monitor = createDlqMonitor({
    nc,
    log,
    metrics,
    settings: settingsFromConfig(config),
    topology: { replicas: config.NATS_REPLICAS, onMismatch: config.TOPOLOGY_MISMATCH },
  });
  try {
    await monitor.start();
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
  const health = await startHealthServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    registry: metrics.registry,
    ready: () => monitor.ready(),
    beforeScrape: () => monitor.refreshGauges(),
  });
  log.info({ metrics: `${health.url}/metrics` }, "dlq-monitor ready");
  return async () => {
    await monitor.close();
    await health.close();
    await nc.drain();
  };
});
