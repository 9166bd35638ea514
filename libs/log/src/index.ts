import { pino, type Logger, type LoggerOptions, type DestinationStream } from "pino";
import pretty from "pino-pretty";

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
  // The receipt callback's token signs WeChat's pushes; the AES key decrypts them.
  "config.WECHAT_CALLBACK_TOKEN",
  "config.WECHAT_ENCODING_AES_KEY",
  "encodingAesKey",
  "*.encodingAesKey",
  "config.TENCENT_SECRET_KEY",
  "secretKey",
  "*.secretKey",
  "config.NATS_PASS",
  "config.NATS_TOKEN",
  "config.NATS_NKEY_SEED",
  "config.GATEWAY_API_KEYS",
];

// Secrets, and who a request is about: an admin searching the send log by openid, or
// WeChat's pushes (its callback URL carries the follower's openid) would otherwise put a
// traveller's identifier in every request line.
const SECRET_QUERY = /([?&](?:access_token|secret|appsecret|token|key|openid|phone|mobile|phone_number)=)[^&#\s"]*/gi;

/** Removes secrets and personal identifiers from a URL or any string that may hold one. */
export function redactUrl(s: string): string {
  return s.replace(SECRET_QUERY, "$1[redacted]");
}

export interface LogOptions {
  name: string;
  level?: string;
  /** Extra redaction paths (e.g. config keys of one service). */
  redact?: string[];
  base?: Record<string, unknown>;
  /**
   * Write stdout in the background (pino's asynchronous destination, flushed on exit)
   * instead of one write(2) per line: for a service that logs a line per request. Lines
   * written just before a SIGKILL may be lost.
   */
  async?: boolean;
}

/** Options of the human-readable form, shared with scripts/start.mjs (which pretty-prints its children's JSON). */
export const PRETTY_OPTIONS = { colorize: true, singleLine: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service,name" } as const;

/**
 * JSON lines, except on a terminal: with stdout a TTY (a person running a service by
 * hand) the lines go through pino-pretty. Redaction happens before either.
 */
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
  if (destination) return pino(options, destination);
  if (process.stdout.isTTY) return pino(options, pretty({ ...PRETTY_OPTIONS, sync: true }));
  return opts.async ? pino(options, pino.destination({ dest: 1, sync: false })) : pino(options);
}
