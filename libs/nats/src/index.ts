export * from "./connect.js";
export * from "./errors.js";
export * from "./topology.js";
