import { pino, type Logger, type LoggerOptions, type DestinationStream } from "pino";

export type { Logger } from "pino";

/**
 * Paths whose values never reach a log line. Query strings are scrubbed separately
 * (redactUrl) because WeChat puts the access token in the URL.
 */
export const REDACT_PATHS = [
  "secret",
  "appSecret",
  "app_secret",
  "access_token",
  "accessToken",
  "token",
  "password",
  "pass",
  "authorization",
  "apiKey",
  "*.secret",
  "*.appSecret",
  "*.app_secret",
  "*.access_token",
  "*.accessToken",
  "*.token",
  "*.password",
  "*.pass",
  "*.apiKey",
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "config.WECHAT_APP_SECRET",
  "config.TENCENT_SECRET_KEY",
  "secretKey",
  "*.secretKey",
  "config.NATS_PASS",
  "config.NATS_TOKEN",
  "config.NATS_NKEY_SEED",
  "config.GATEWAY_API_KEYS",
];

const SECRET_QUERY = /([?&](?:access_token|secret|appsecret|token|key)=)[^&#\s"]*/gi;

/** Removes secrets from a URL or any string that may hold one. */
export function redactUrl(s: string): string {
  return s.replace(SECRET_QUERY, "$1[redacted]");
}

export interface LogOptions {
  name: string;
  level?: string;
  /** Extra redaction paths (e.g. config keys of one service). */
  redact?: string[];
  base?: Record<string, unknown>;
}

export function createLogger(opts: LogOptions, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name: opts.name,
    level: opts.level ?? "info",
    base: { service: opts.name, pid: process.pid, ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS, ...(opts.redact ?? [])], censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error);
        if (s && typeof s.message === "string") s.message = redactUrl(s.message);
        if (s && typeof s.stack === "string") s.stack = redactUrl(s.stack);
        return s;
      },
      url: (u: unknown) => (typeof u === "string" ? redactUrl(u) : u),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
