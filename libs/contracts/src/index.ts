export * from "./names.js";
export * from "./keys.js";
export * from "./envelope.js";
export * from "./records.js";
export * from "./templates.js";
export * from "./codec.js";
export * from "./trace.js";
export * from "./backoff.js";
