export * from "./connect.js";
export * from "./errors.js";
export * from "./topology.js";
export * from "./records.js";
export * from "./actor.js";
export * from "./jobs.js";
export * from "./dlq.js";
export * from "./js-pipeline.js";
