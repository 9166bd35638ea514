import { runService } from "@notify/runtime";
import { buildApp } from "./app.js";
import { gatewaySettings, loadGatewayConfig, receiptSettings, smsReportSettings } from "./config.js";
import { closeSendLog, openSendLog } from "./sendlog.js";
import type { SendLogDb } from "./services/send-search.js";

// The only file that reads the environment, listens and handles signals (@notify/runtime).
await runService({
  name: "gateway",
  loadConfig: loadGatewayConfig,
  // A PostgreSQL URL may carry its password.
  // One line per request: written in the background, not one write(2) each (a third of a
  // read route's cost on the bench box).
  asyncLog: true,
  redact: ["config.DATABASE_URL", "*.DATABASE_URL", "config.TENCENT_SMS_CALLBACK_TOKEN", "*.TENCENT_SMS_CALLBACK_TOKEN"],
  start: async ({ config, nc, log, metrics, topology }) => {
    if (config.GATEWAY_AUTH === "off") log.warn("GATEWAY_AUTH=off: /notifications/* is open to anyone who can reach this port (local use only)");
    // Opened in the background once the gateway listens: the embedded PGlite takes seconds
    // (and holds the event loop while it compiles), and only the search routes need it.
    let opened!: (s: Promise<SendLogDb | null>) => void;
    const sendlog = new Promise<SendLogDb | null>((resolve) => (opened = resolve));
    const receipts = receiptSettings(config);
    const smsReports = smsReportSettings(config);
    const app = buildApp({ nc, topology, settings: gatewaySettings(config), log, metrics, sendlog, ...(receipts ? { receipts } : {}), ...(smsReports ? { smsReports } : {}) });
    await app.listen({ host: config.GATEWAY_HOST, port: config.GATEWAY_PORT });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.GATEWAY_PORT;
    const host = config.GATEWAY_HOST === "0.0.0.0" || config.GATEWAY_HOST === "::" ? "127.0.0.1" : config.GATEWAY_HOST;
    console.log(`Swagger UI: http://${host}:${port}/docs`);
    const opening = openSendLog(config, nc, log, metrics);
    opening.catch((err: unknown) => log.error({ err }, "send log: could not open the database; the search routes answer 503"));
    opened(opening);
    // Stop taking requests and finish the ones in flight (runtime drains NATS after).
    return {
      close: async () => {
        await app.close();
        // A PGlite still opening is not waited for past 10 s (the drain has 25 s in all).
        const opened = await Promise.race([sendlog.catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref())]);
        await closeSendLog(opened);
      },
      readyFields: { docs: `http://${host}:${port}/docs`, openapi: `http://${host}:${port}/openapi.json` } };
  },
});
