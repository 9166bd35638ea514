export * from "./load.js";
export * from "./common.js";
