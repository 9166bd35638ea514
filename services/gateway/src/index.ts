export { buildApp, type AppDeps, type GatewayApp } from "./app.js";
export { GatewayConfigSchema, gatewaySettings, loadGatewayConfig, receiptSettings, smsReportSettings, type GatewayConfig, type GatewaySettings } from "./config.js";
export { createKeyVerifier, type KeyVerifier } from "./auth.js";
export { toOas30Document, toOas30Schema } from "./openapi.js";
export { PROTECTED_PREFIX, keyIdOf } from "./plugins/auth.js";
export { HELMET_OPTIONS, helmetHeaders } from "./plugins/security.js";
