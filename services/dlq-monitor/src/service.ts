import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Consumers, Streams, type AlertFact } from "@notify/contracts";
import { Actor, RecordStore, ensureTopology, openBuckets, type TopologyOptions } from "@notify/nats";
import type { Logger } from "@notify/log";
import { createMetrics, type Metrics } from "@notify/metrics";
import { Alerting, type AlertRules, type AlertWebhook } from "@notify/alerting";
import { loadDlqMonitorConfig, settingsFromConfig, type DlqMonitorSettings } from "./config.js";
import { createAdvisoryHandler, type AdvisoryOutcome, type MaxDeliveriesAdvisory } from "./monitor.js";

export type { DlqMonitorSettings } from "./config.js";

export interface DlqMonitorDeps {
  nc: NatsConnection;
  log: Logger;
  /** Defaults to `createMetrics("dlq-monitor")`. */
  metrics?: Metrics;
  /** Overrides of what an empty environment gives (the schema's defaults, the one layer). */
  settings?: Partial<DlqMonitorSettings>;
  /**
   * Options for `ensureTopology` (replicas, mismatch policy). The monitor creates no
   * sender consumers unless `channels` is given: those belong to the senders. `false`
   * skips ensureTopology and expects every resource to exist.
   */
  topology?: TopologyOptions | false;
  /** Clock (tests). */
  now?: () => number;
  /** Hooks for tests and embedding. */
  onAlert?: (fact: AlertFact) => void;
  onAdvisory?: (outcome: AdvisoryOutcome, advisory: MaxDeliveriesAdvisory | null) => void;
}

export interface DlqMonitor {
  readonly metrics: Metrics;
  readonly settings: DlqMonitorSettings;
  /** The alert rules' state (streaks, windows); null before start(). */
  readonly rules: AlertRules | null;
  readonly webhook: AlertWebhook | null;
  /** Ensures the topology, starts the advisory actor and the alerting unit it hosts. */
  start(): Promise<void>;
  /** Resolves when the start-up replay of facts is done and alerts are live. */
  alertsLive(): Promise<void>;
  /** NATS connected and the dlq-monitor consumer reachable. */
  ready(): Promise<boolean>;
  /** Consumer lag, DLQ depth and in-flight gauges (before each /metrics scrape). */
  refreshGauges(): Promise<void>;
  /** Checks the DLQ depth now (alerts if over the threshold); returns it. */
  checkDlqDepth(): Promise<number>;
  /** Stops fetching, drains in-flight advisories, stops alerting, flushes the webhook. Idempotent; never closes `nc`. */
  close(): Promise<void>;
}

/**
 * The DLQ monitor as a factory: tests build it in-process against a real nats-server,
 * main.ts builds it from the environment. It owns neither the connection nor the
 * health server.
 */
export function createDlqMonitor(deps: DlqMonitorDeps): DlqMonitor {
  const settings: DlqMonitorSettings = { ...settingsFromConfig(loadDlqMonitorConfig({})), ...deps.settings };
  const metrics = deps.metrics ?? createMetrics("dlq-monitor");
  const log = deps.log;
  const js = jetstream(deps.nc);

  let jsm: JetStreamManager | null = null;
  let actor: Actor | null = null;
  let alerting: Alerting | null = null;
  let started: Promise<void> | null = null;
  let closing: Promise<void> | null = null;

  async function doStart(): Promise<void> {
    let records: RecordStore;
    if (deps.topology === false) {
      jsm = await jetstreamManager(deps.nc);
      records = new RecordStore((await openBuckets(deps.nc)).records);
    } else {
      const topo = await ensureTopology(deps.nc, { channels: [], ...deps.topology, log });
      jsm = topo.jsm;
      records = new RecordStore(topo.buckets.records);
    }
    alerting = new Alerting({
      js,
      jsm,
      log: log.child({ component: "alerting" }),
      metrics,
      settings,
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.onAlert ? { onAlert: deps.onAlert } : {}),
    });
    const a = alerting;
    const handle = createAdvisoryHandler({
      js,
      jsm,
      records,
      metrics,
      log,
      // The streak learns of this failure from the fact on notification.dead; the depth is re-checked now.
      onDead: () => a.requestDlqCheck(),
      ...(deps.onAdvisory ? { onOutcome: deps.onAdvisory } : {}),
    });
    actor = new Actor({ js, stream: Streams.advisories, consumer: Consumers.dlqMonitor, concurrency: settings.concurrency, handle, log, errorDelayMs: 1000 });
    try {
      await alerting.start();
      await actor.start();
    } catch (err) {
      await actor.close().catch(() => undefined);
      await alerting.close().catch(() => undefined);
      throw err;
    }
    log.info(
      {
        concurrency: settings.concurrency,
        dlq_alert_threshold: settings.dlqAlertThreshold,
        consecutive_failures: settings.consecutiveFailures,
        dedup_window_ms: settings.dedupWindowMs,
        webhook: settings.webhook ? "configured" : "off",
      },
      "dlq-monitor started",
    );
  }

  return {
    metrics,
    settings,
    get rules() {
      return alerting?.rules ?? null;
    },
    get webhook() {
      return alerting?.webhook ?? null;
    },
    start() {
      if (closing) return Promise.reject(new Error("dlq-monitor is closed"));
      started ??= doStart();
      return started;
    },
    async alertsLive() {
      await started;
      await alerting?.ready;
    },
    async ready() {
      if (!jsm || !actor || deps.nc.isClosed() || closing) return false;
      await jsm.consumers.info(Streams.advisories, Consumers.dlqMonitor);
      return true;
    },
    async refreshGauges() {
      if (!jsm) return;
      const ci = await jsm.consumers.info(Streams.advisories, Consumers.dlqMonitor);
      metrics.consumerPending.set({ stream: Streams.advisories, consumer: Consumers.dlqMonitor }, ci.num_pending);
      metrics.consumerAckPending.set({ stream: Streams.advisories, consumer: Consumers.dlqMonitor }, ci.num_ack_pending);
      metrics.inFlight.set({ actor: Consumers.dlqMonitor }, actor?.busy ?? 0);
      metrics.dlqDepth.set((await jsm.streams.info(Streams.dlq)).state.messages);
    },
    async checkDlqDepth() {
      if (!alerting) throw new Error("dlq-monitor is not started");
      return alerting.checkDlqDepth();
    },
    close() {
      closing ??= (async () => {
        await started?.catch(() => undefined);
        // Every step runs even if an earlier one fails: advisories first, then alerting (which closes its webhook).
        for (const step of [() => actor?.close(), () => alerting?.close()]) {
          try {
            await step();
          } catch (err) {
            log.warn({ err }, "dlq-monitor close step failed");
          }
        }
        log.info("dlq-monitor stopped");
      })();
      return closing;
    },
  };
}
