import { Type, type Static } from "typebox";
import { ConfigError, CsvList, LogEnv, NatsEnv, Port, SendlogEnv, loadConfig } from "@notify/config";

/** Every setting of the gateway, read from the environment (the README's operator contract). */
export const GatewayConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...SendlogEnv,
  SENDLOG: Type.Enum(["on", "off"], {
    default: "on",
    description: "The SQL send log behind GET /notifications/sends, /orders, /sends/stats: DATABASE_URL (filled by the projector service), else an embedded PGlite this gateway fills itself; off = those routes answer 503",
  }),
  GATEWAY_HOST: Type.String({ default: "0.0.0.0", description: "Interface the HTTP server binds" }),
  GATEWAY_PORT: Port({ default: 3000, description: "HTTP port (0 = a free port)" }),
  GATEWAY_API_KEYS: CsvList({ default: [], description: "Comma-separated bearer keys accepted on /notifications/*" }),
  GATEWAY_AUTH: Type.Enum(["on", "off"], { default: "on", description: "off disables the bearer check: local use only" }),
  GATEWAY_RATE_LIMIT: Type.Integer({
    minimum: 1,
    default: 100_000,
    description: "Requests per minute per API key (per client address without one)",
  }),
});
export type GatewayConfig = Static<typeof GatewayConfigSchema>;

/** The part of the config the HTTP app itself needs (buildApp takes only this). */
export interface GatewaySettings {
  apiKeys: readonly string[];
  auth: "on" | "off";
  rateLimitPerMinute: number;
}

/** Reads and validates the environment; refuses to start with no keys unless auth is off. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const config = loadConfig(GatewayConfigSchema, env);
  if (config.GATEWAY_AUTH === "on" && config.GATEWAY_API_KEYS.length === 0) {
    throw new ConfigError(
      "invalid configuration:\n  GATEWAY_API_KEYS: at least one bearer key is required (set GATEWAY_AUTH=off only for local use)",
      ["GATEWAY_API_KEYS"],
    );
  }
  return config;
}

export function gatewaySettings(config: GatewayConfig): GatewaySettings {
  return { apiKeys: config.GATEWAY_API_KEYS, auth: config.GATEWAY_AUTH, rateLimitPerMinute: config.GATEWAY_RATE_LIMIT };
}
