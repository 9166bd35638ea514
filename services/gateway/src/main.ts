import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { connectNats, ensureTopology } from "@notify/nats";
import { runMain } from "@notify/runtime";
import { buildApp } from "./app.js";
import { gatewaySettings, loadGatewayConfig } from "./config.js";

// The only place that reads the environment, listens and handles signals.
let config;
try {
  config = loadGatewayConfig(process.env);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
const log = createLogger({ name: "gateway", level: config.LOG_LEVEL });

await runMain(log, async () => {
  if (config.GATEWAY_AUTH === "off") log.warn("GATEWAY_AUTH=off: /notifications/* is open to anyone who can reach this port (local use only)");
  const nc = await connectNats(config, "gateway", log);
  const topology = await ensureTopology(nc, { replicas: config.NATS_REPLICAS, onMismatch: config.TOPOLOGY_MISMATCH, log });
  const app = buildApp({ nc, topology, settings: gatewaySettings(config), log, metrics: createMetrics("gateway") });
  await app.listen({ host: config.GATEWAY_HOST, port: config.GATEWAY_PORT });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.GATEWAY_PORT;
  const host = config.GATEWAY_HOST === "0.0.0.0" || config.GATEWAY_HOST === "::" ? "127.0.0.1" : config.GATEWAY_HOST;
  log.info({ docs: `http://${host}:${port}/docs`, openapi: `http://${host}:${port}/openapi.json` }, "gateway ready");
  console.log(`Swagger UI: http://${host}:${port}/docs`);
  return async () => {
    // Stop taking requests and finish the ones in flight, then drain NATS.
    await app.close();
    await nc.drain();
  };
});
