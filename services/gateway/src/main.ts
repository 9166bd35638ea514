import { runService } from "@notify/runtime";
import { buildApp } from "./app.js";
import { gatewaySettings, loadGatewayConfig } from "./config.js";

// The only file that reads the environment, listens and handles signals (@notify/runtime).
await runService({
  name: "gateway",
  loadConfig: loadGatewayConfig,
  start: async ({ config, nc, log, metrics, topology }) => {
    if (config.GATEWAY_AUTH === "off") log.warn("GATEWAY_AUTH=off: /notifications/* is open to anyone who can reach this port (local use only)");
    const app = buildApp({ nc, topology, settings: gatewaySettings(config), log, metrics });
    await app.listen({ host: config.GATEWAY_HOST, port: config.GATEWAY_PORT });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.GATEWAY_PORT;
    const host = config.GATEWAY_HOST === "0.0.0.0" || config.GATEWAY_HOST === "::" ? "127.0.0.1" : config.GATEWAY_HOST;
    console.log(`Swagger UI: http://${host}:${port}/docs`);
    // Stop taking requests and finish the ones in flight (runtime drains NATS after).
    return { close: () => app.close(), readyFields: { docs: `http://${host}:${port}/docs`, openapi: `http://${host}:${port}/openapi.json` } };
  },
});
