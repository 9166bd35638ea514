export * from "./config.js";
export * from "./envelope.js";
export * from "./dispatch.js";
export * from "./service.js";
