export * from "./metrics.js";
export * from "./health-server.js";
export { Counter, Gauge, Histogram, Registry } from "prom-client";
