export * from "./metrics.js";
export * from "./health-server.js";
export { Registry } from "prom-client";
