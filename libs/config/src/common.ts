import { Type } from "typebox";
import { CsvList } from "./load.js";

/** NATS connection settings shared by every service (the README's operator contract). */
export const NatsEnv = {
  NATS_URL: CsvList({ default: ["nats://127.0.0.1:4222"], description: "Comma-separated NATS servers" }),
  NATS_USER: Type.Optional(Type.String()),
  NATS_PASS: Type.Optional(Type.String()),
  NATS_TOKEN: Type.Optional(Type.String()),
  NATS_CREDS: Type.Optional(Type.String({ description: "Path to a .creds file" })),
  NATS_NKEY_SEED: Type.Optional(Type.String({ description: "NKey seed (SU...) or a path to a file holding it" })),
  NATS_TLS_CA: Type.Optional(Type.String()),
  NATS_TLS_CERT: Type.Optional(Type.String()),
  NATS_TLS_KEY: Type.Optional(Type.String()),
  NATS_PING_INTERVAL_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 10_000,
    description: "How often the client pings its server; two unanswered pings drop the connection and fail over to another server",
  }),
  NATS_REPLICAS: Type.Integer({ minimum: 1, maximum: 5, default: 1, description: "Replicas for streams and buckets" }),
  /** "fail" stops when an existing stream/consumer differs from ours; "warn" logs and goes on. */
  TOPOLOGY_MISMATCH: Type.Enum(["warn", "fail"], { default: "warn" }),
};

export const LogEnv = {
  LOG_LEVEL: Type.Enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { default: "info" }),
};

/** A TCP port (0 = a free port), refused with a message that says so. */
export const Port = (opts: { default: number; description?: string }) =>
  Type.Integer({ minimum: 0, maximum: 65535, ...opts, "x-error": "must be a port number (0-65535)" });

/** Workers serve /metrics, /healthz and /readyz on this port (0 = a free port). */
export const MetricsEnv = {
  METRICS_PORT: Port({ default: 9464 }),
  METRICS_HOST: Type.String({ default: "0.0.0.0" }),
};

export const WeChatEnv = {
  WECHAT_API_BASE: Type.String({ default: "https://api.weixin.qq.com", pattern: "^https?://" }),
  WECHAT_APP_ID: Type.String({ default: "wx-local-simulator" }),
  WECHAT_APP_SECRET: Type.String({ default: "local-simulator-secret" }),
  WECHAT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
};

/** The send log's SQL read model (projector and gateway). */
export const SendlogEnv = {
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: "^postgres(ql)?://", description: "PostgreSQL for the send log; unset = embedded PGlite under SENDLOG_PGLITE_DIR" }),
  ),
  SENDLOG_PGLITE_DIR: Type.String({ default: "data/sendlog", description: "PGlite's data directory when DATABASE_URL is unset" }),
};

/** Channels this deployment sends on (dispatcher: what it renders; gateway: the send_ids an accepted event announces). */
export const ChannelsEnv = {
  CHANNELS: CsvList({ default: ["wechat"], description: "Comma-separated channels this deployment sends on; SMS stays off unless listed" }),
};
