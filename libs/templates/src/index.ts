export * from "./errors.js";
export * from "./compile.js";
export * from "./types.js";
export * from "./cache.js";
export * from "./field-rules.js";
export * from "./sms.js";
export * from "./turns.js";
