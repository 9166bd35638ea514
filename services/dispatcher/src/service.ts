import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, Consumers, Streams } from "@notify/contracts";
import { Actor, INFRA_RETRY_BASE_MS, INFRA_RETRY_MAX_MS, JsPipeline, KvWriter, RecordStore, ensureTopology, isTopology, type Topology, type TopologyOptions } from "@notify/nats";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import { TemplateCache } from "@notify/templates";
import { createDispatchHandler } from "./dispatch.js";

/** nats-server's default, used until the server's INFO is known. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export interface DispatcherServiceOptions {
  nc: NatsConnection;
  log: Logger;
  metrics: Metrics;
  channels: readonly string[];
  concurrency: number;
  /** Ensured already (main.ts), or options to ensure it with. */
  topology?: TopologyOptions | Topology;
  afterClaim?: (sendId: string) => Promise<void> | void;
  /** How a delivery that threw backs off (default INFRA_RETRY_BASE_MS doubling to INFRA_RETRY_MAX_MS); tests shorten it. */
  infraRetry?: { baseMs: number; maxMs: number };
}

export interface DispatcherService {
  templates: TemplateCache;
  actor: Actor;
  ready(): Promise<boolean>;
  /** Refreshes the consumer lag gauges (called before each /metrics scrape). */
  refreshGauges(): Promise<void>;
  close(): Promise<void>;
}

/** Wires the dispatcher: topology, template cache (KV watch), the pull actor on EVENTS. */
export async function startDispatcher(o: DispatcherServiceOptions): Promise<DispatcherService> {
  // The sender consumers belong to the senders (their ack wait follows the WeChat timeout).
  const topo = isTopology(o.topology) ? o.topology : await ensureTopology(o.nc, { ...o.topology, channels: [], log: o.log });
  const templates = new TemplateCache(topo.buckets.templates, {
    onInvalid: (key, err) => o.log.error({ key, err }, "stored template does not compile; ignored"),
    onChange: (key, op) => o.log.info({ key, op }, "template changed"),
  });
  await templates.start();
  const js = jetstream(o.nc);
  // Hot-path writes (claim, record, job) go through one pipelined reply subscription.
  const pipeline = new JsPipeline(o.nc, { fallback: js });
  const handle = createDispatchHandler({
    js,
    publisher: pipeline,
    records: new RecordStore(topo.buckets.records, new KvWriter(topo.buckets.records, pipeline, Buckets.records)),
    locks: topo.buckets.locks,
    lockWriter: new KvWriter(topo.buckets.locks, pipeline, Buckets.locks),
    templates,
    metrics: o.metrics,
    log: o.log,
    channels: o.channels,
    maxPayload: () => o.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD,
    ...(o.afterClaim ? { afterClaim: o.afterClaim } : {}),
  });
  // A throw is an infrastructure error (SENDS or a bucket without a leader for a while):
  // back off, doubling per delivery, so an election does not spend the ten deliveries.
  const actor = new Actor({
    js,
    stream: Streams.events,
    consumer: Consumers.dispatcher,
    concurrency: o.concurrency,
    handle,
    log: o.log,
    ackWith: pipeline,
    errorDelayMs: o.infraRetry?.baseMs ?? INFRA_RETRY_BASE_MS,
    errorDelayMaxMs: o.infraRetry?.maxMs ?? INFRA_RETRY_MAX_MS,
  });
  await actor.start();
  o.log.info({ templates: templates.size, channels: o.channels, concurrency: o.concurrency }, "dispatcher started");

  let closing: Promise<void> | null = null;
  return {
    templates,
    actor,
    async ready() {
      if (o.nc.isClosed()) return false;
      await topo.jsm.consumers.info(Streams.events, Consumers.dispatcher);
      return true;
    },
    async refreshGauges() {
      const ci = await topo.jsm.consumers.info(Streams.events, Consumers.dispatcher);
      o.metrics.consumerPending.set({ stream: Streams.events, consumer: Consumers.dispatcher }, ci.num_pending);
      o.metrics.consumerAckPending.set({ stream: Streams.events, consumer: Consumers.dispatcher }, ci.num_ack_pending);
      o.metrics.inFlight.set({ actor: "dispatcher" }, actor.busy);
    },
    close() {
      closing ??= (async () => {
        await actor.close();
        pipeline.close();
        await templates.stop();
      })();
      return closing;
    },
  };
}
