import { Type, type Static } from "typebox";
import { ChannelsEnv, ConfigError, CsvList, LogEnv, NatsEnv, Port, SendlogEnv, loadConfig } from "@notify/config";

/** Every setting of the gateway, read from the environment (the README's operator contract). */
export const GatewayConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...SendlogEnv,
  ...ChannelsEnv,
  SENDLOG: Type.Enum(["on", "off"], {
    default: "on",
    description: "The SQL send log behind GET /notifications/sends, /orders, /sends/stats: DATABASE_URL (filled by the projector service), else an embedded PGlite this gateway fills itself; off = those routes answer 503",
  }),
  GATEWAY_HOST: Type.String({ default: "0.0.0.0", description: "Interface the HTTP server binds" }),
  GATEWAY_PORT: Port({ default: 3000, description: "HTTP port (0 = a free port)" }),
  GATEWAY_API_KEYS: CsvList({ default: [], description: "Comma-separated bearer keys accepted on /notifications/*" }),
  GATEWAY_AUTH: Type.Enum(["on", "off"], { default: "on", description: "off disables the bearer check: local use only" }),
  WECHAT_CALLBACK_TOKEN: Type.Optional(
    Type.String({ minLength: 3, maxLength: 32, pattern: "^[A-Za-z0-9]+$", description: "The Token of the account's server configuration: enables /wechat/callback (delivery receipts)" }),
  ),
  WECHAT_ENCODING_AES_KEY: Type.Optional(
    Type.String({ pattern: "^[A-Za-z0-9]{43}$", description: "The account's EncodingAESKey (43 characters): accepts safe-mode (encrypted) pushes" }),
  ),
  WECHAT_APP_ID: Type.String({ default: "wx-local-simulator", description: "The account's appid (safe mode checks pushes were encrypted for it)" }),
  WECHAT_CALLBACK_MAX_AGE_SEC: Type.Integer({
    minimum: 10,
    maximum: 86_400,
    default: 300,
    description: "Replay window of /wechat/callback: a push whose signed timestamp is further than this from now is refused (401)",
  }),
  TENCENT_SMS_CALLBACK_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      maxLength: 128,
      pattern: "^[A-Za-z0-9_-]+$",
      description: "Shared secret of the SMS status-report callback URL (…/sms/status-report?token=<it>): enables the route; Tencent signs nothing",
    }),
  ),
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
  /** CHANNELS (as the dispatcher's): an accepted event announces one send_id per channel. Default ["wechat"]. */
  channels?: readonly string[];
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

/** /wechat/callback settings, or undefined when no callback token is configured. */
export function receiptSettings(config: GatewayConfig): { token: string; appId: string; maxAgeSec: number; encodingAesKey?: string } | undefined {
  if (!config.WECHAT_CALLBACK_TOKEN) return undefined;
  return { token: config.WECHAT_CALLBACK_TOKEN, appId: config.WECHAT_APP_ID, maxAgeSec: config.WECHAT_CALLBACK_MAX_AGE_SEC, ...(config.WECHAT_ENCODING_AES_KEY ? { encodingAesKey: config.WECHAT_ENCODING_AES_KEY } : {}) };
}

/** /sms/status-report settings, or undefined (the route is not mounted: 404) when no token is configured. */
export function smsReportSettings(config: GatewayConfig): { token: string } | undefined {
  return config.TENCENT_SMS_CALLBACK_TOKEN ? { token: config.TENCENT_SMS_CALLBACK_TOKEN } : undefined;
}

export function gatewaySettings(config: GatewayConfig): GatewaySettings {
  return { apiKeys: config.GATEWAY_API_KEYS, auth: config.GATEWAY_AUTH, rateLimitPerMinute: config.GATEWAY_RATE_LIMIT, channels: config.CHANNELS };
}
