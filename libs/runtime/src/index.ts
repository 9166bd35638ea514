import closeWithGrace from "close-with-grace";
import type { NatsConnection } from "@nats-io/transport-node";
import { createLogger, type Logger } from "@notify/log";
import { createMetrics, startHealthServer, type Metrics, type Readiness } from "@notify/metrics";
import { connectNats, ensureTopology, type NatsSettings, type Topology, type TopologyOptions } from "@notify/nats";

/** What every service's configuration holds (libs/config's NatsEnv and LogEnv). */
export interface BaseConfig extends NatsSettings {
  LOG_LEVEL: string;
  NATS_REPLICAS: number;
  TOPOLOGY_MISMATCH: "warn" | "fail";
  /** Workers only: /metrics, /healthz and /readyz are served here. */
  METRICS_PORT?: number;
  METRICS_HOST?: string;
}

export interface ServiceContext<C> {
  config: C;
  log: Logger;
  nc: NatsConnection;
  /** Ensured before `start` runs, with the options the service named. */
  topology: Topology;
  metrics: Metrics;
}

/** A started service: what to close, and (workers) what the health server asks. */
export interface Running {
  close(): Promise<void>;
  /** /readyz: a boolean, or a verdict with checks shown in the body (the projector's lag). */
  ready?(): Promise<boolean | Readiness>;
  refreshGauges?(): Promise<void>;
  /** Extra fields for the "<name> ready" log line. */
  readyFields?: Record<string, unknown>;
}

export interface ServiceSpec<C extends BaseConfig> {
  name: string;
  /** Reads and validates the environment; throws an Error whose message names the variable. */
  loadConfig(env: NodeJS.ProcessEnv): C;
  /** Log paths to redact beyond the shared ones (a service's own secrets). */
  redact?: string[];
  /** Log lines written to stdout in the background (a line per HTTP request): @notify/log `async`. */
  asyncLog?: boolean;
  /** The streams, consumers and buckets this service ensures (replicas and mismatch policy come from the config). */
  topology?(config: C): TopologyOptions;
  start(ctx: ServiceContext<C>): Promise<Running>;
}

/** Give up draining after this long and exit 1 (below Kubernetes' 30 s grace period). */
export const DRAIN_TIMEOUT_MS = 25_000;

/**
 * The one start-up routine of every `main.ts`: config (a bad variable prints one line naming
 * it and exits 1), logger, NATS, topology, the service, the workers' health server, and
 * close-with-grace on SIGTERM/SIGINT (drain, then exit 0; a second signal or a drain past
 * 25 s exits 1).
 */
export async function runService<C extends BaseConfig>(spec: ServiceSpec<C>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: C;
  try {
    config = spec.loadConfig(env);
  } catch (err) {
    process.stderr.write(`${spec.name}: ${oneLine(err)}\n`);
    process.exit(1);
  }
  const log = createLogger({ name: spec.name, level: config.LOG_LEVEL, ...(spec.redact ? { redact: spec.redact } : {}), ...(spec.asyncLog ? { async: true } : {}) });
  let nc: NatsConnection | undefined;
  try {
    nc = await connectNats(config, spec.name, log);
    const topology = await ensureTopology(nc, { replicas: config.NATS_REPLICAS, onMismatch: config.TOPOLOGY_MISMATCH, ...spec.topology?.(config), log });
    const metrics = createMetrics(spec.name);
    const running = await spec.start({ config, log, nc, topology, metrics });
    const health =
      config.METRICS_PORT !== undefined && running.ready
        ? await startHealthServer({
            port: config.METRICS_PORT,
            ...(config.METRICS_HOST ? { host: config.METRICS_HOST } : {}),
            registry: metrics.registry,
            ready: running.ready.bind(running),
            ...(running.refreshGauges ? { beforeScrape: running.refreshGauges.bind(running) } : {}),
          })
        : undefined;
    log.info({ ...(health ? { metrics: `${health.url}/metrics` } : {}), ...running.readyFields }, `${spec.name} ready`);
    const conn = nc;
    closeWithGrace({ delay: DRAIN_TIMEOUT_MS, logger: false, onTimeout: () => log.error({ timeoutMs: DRAIN_TIMEOUT_MS }, "drain timed out"), onSecondSignal: (signal) => log.warn({ signal }, "second signal: exiting now") }, async ({ signal, err }) => {
      if (err) log.error({ err }, "unexpected error: shutting down");
      else log.info({ signal }, "shutting down: draining in-flight work");
      try {
        // Stop taking work and finish what is in flight, then drain NATS.
        await running.close();
        await health?.close();
        await conn.drain();
      } catch (e) {
        log.error({ err: e }, "shutdown failed");
        throw e;
      }
      log.info("stopped");
    });
  } catch (err) {
    log.fatal({ err }, "failed to start");
    await nc?.close().catch(() => undefined);
    // Let pino flush before exiting.
    setTimeout(() => process.exit(1), 50);
  }
}

/** A configuration error as one line: ConfigError lists its variables on lines of their own. */
export function oneLine(err: unknown): string {
  const [head = "", ...rest] = (err instanceof Error ? err.message : String(err)).split("\n").map((l) => l.trim()).filter(Boolean);
  return rest.length ? `${head}${head.endsWith(":") ? " " : "; "}${rest.join("; ")}` : head;
}
