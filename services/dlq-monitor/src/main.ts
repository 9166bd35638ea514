import { runService } from "@notify/runtime";
import { loadDlqMonitorConfig, settingsFromConfig } from "./config.js";
import { createDlqMonitor } from "./service.js";

// The only file that reads the environment, listens and handles signals (@notify/runtime).
await runService({
  name: "dlq-monitor",
  loadConfig: loadDlqMonitorConfig,
  // A chat webhook keeps its secret in the URL.
  redact: ["config.ALERT_WEBHOOK_URL", "*.ALERT_WEBHOOK_URL"],
  start: async ({ config, nc, log, metrics }) => {
    // The topology is ensured already (no sender consumers: those belong to the senders).
    const monitor = createDlqMonitor({ nc, log, metrics, settings: settingsFromConfig(config), topology: false });
    await monitor.start();
    return monitor;
  },
});
