import { readFileSync, existsSync } from "node:fs";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import type { Logger } from "@notify/log";

/** The NATS part of every service's config (see @notify/config NatsEnv). */
export interface NatsSettings {
  NATS_URL: string[];
  NATS_USER?: string | undefined;
  NATS_PASS?: string | undefined;
  NATS_TOKEN?: string | undefined;
  NATS_CREDS?: string | undefined;
  NATS_NKEY_SEED?: string | undefined;
  NATS_TLS_CA?: string | undefined;
  NATS_TLS_CERT?: string | undefined;
  NATS_TLS_KEY?: string | undefined;
  NATS_PING_INTERVAL_MS?: number | undefined;
}

/** Unanswered pings before the client gives a server up (the client's default, named). */
export const NATS_MAX_PINGS_OUT = 2;
/** How long one connection attempt (TCP and the server's INFO) may take. */
export const NATS_CONNECT_TIMEOUT_MS = 5_000;

/** Builds connection options from config; credentials never leave this function in logs. */
export function connectionOptions(s: NatsSettings, name: string): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: s.NATS_URL,
    name,
    // Without this every request builds two Error objects for async stack traces:
    // publish/KV throughput drops by ~40% (measured on the @nats-io 3.4 clients).
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // The client's default (2 min) leaves a connection to a frozen or vanished server (a
    // killed container answers no FIN) looking alive for up to 4 min, with every request
    // timing out; a short ping moves it to another server of the cluster in ~20 s.
    pingInterval: s.NATS_PING_INTERVAL_MS ?? 10_000,
    maxPingOut: NATS_MAX_PINGS_OUT,
    // A frozen server still accepts TCP connections (the kernel does) and never sends its
    // INFO: without a short handshake deadline (default 20 s) a reconnect that tries it
    // first waits that long before trying the next server.
    timeout: NATS_CONNECT_TIMEOUT_MS,
  };
  if (s.NATS_USER) {
    opts.user = s.NATS_USER;
    opts.pass = s.NATS_PASS ?? "";
  }
  if (s.NATS_TOKEN) opts.token = s.NATS_TOKEN;
  if (s.NATS_CREDS) opts.authenticator = credsAuthenticator(readFileSync(s.NATS_CREDS));
  if (s.NATS_NKEY_SEED) {
    const seed = existsSync(s.NATS_NKEY_SEED) ? readFileSync(s.NATS_NKEY_SEED, "utf8").trim() : s.NATS_NKEY_SEED;
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (s.NATS_TLS_CA || s.NATS_TLS_CERT) {
    opts.tls = {
      ...(s.NATS_TLS_CA ? { caFile: s.NATS_TLS_CA } : {}),
      ...(s.NATS_TLS_CERT ? { certFile: s.NATS_TLS_CERT } : {}),
      ...(s.NATS_TLS_KEY ? { keyFile: s.NATS_TLS_KEY } : {}),
    };
  }
  return opts;
}

/** Connects and logs connection state changes (never credentials). */
export async function connectNats(s: NatsSettings, name: string, log?: Logger): Promise<NatsConnection> {
  const nc = await connect(connectionOptions(s, name));
  log?.info({ server: nc.getServer() }, "nats connected");
  if (log) {
    void (async () => {
      for await (const st of nc.status()) {
        if (st.type === "disconnect" || st.type === "reconnect" || st.type === "error") {
          log.warn({ nats: st.type, server: "server" in st ? st.server : undefined }, "nats status");
        }
      }
    })().catch(() => undefined);
  }
  return nc;
}
