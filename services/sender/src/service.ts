import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { createProviderAlert } from "@notify/alerting";
import { Buckets, Consumers, Streams, type BackoffPolicy } from "@notify/contracts";
import { Actor, JsPipeline, INFRA_RETRY_BASE_MS, INFRA_RETRY_MAX_MS, KvWriter, RecordStore, ensureTopology, isTopology, type Topology, type TopologyOptions } from "@notify/nats";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import type { Channel } from "./channels/channel.js";
import { QuotaGovernor } from "./quota-governor.js";
import { createSendHandler } from "./send.js";

export interface SenderServiceOptions {
  nc: NatsConnection;
  log: Logger;
  metrics: Metrics;
  /** Builds the channel once the topology (e.g. the shared token bucket) exists. */
  createChannel: (topo: Topology) => Channel;
  concurrency: number;
  retry: BackoffPolicy;
  /** Jitter source (tests). */
  random?: () => number;
  quotaParkMs: number;
  /** Parked jobs wake spread over this long after the quota resets (default 60 s). */
  quotaResumeSpreadMs?: number;
  /** Quota polling (one replica, through a KV lease): period and alert share; false or absent = off. */
  quotaPoll?: { intervalMs: number; alertShare: number; replicaId?: string } | false;
  /** Epoch ms now (tests). */
  now?: () => number;
  /** Ensured already (main.ts, which names this sender's channel), or options to ensure it with. */
  topology?: TopologyOptions | Topology;
}

export interface SenderService {
  actor: Actor;
  /** The quota poller (null when off or the channel reports no quota). */
  quota: QuotaGovernor | null;
  ready(): Promise<boolean>;
  refreshGauges(): Promise<void>;
  close(): Promise<void>;
}

/** One sender replica: a pull actor on `sender-<channel>`, shared with every other replica. */
export async function startSender(o: SenderServiceOptions): Promise<SenderService> {
  const given = o.topology;
  const channels = isTopology(given) ? null : (given?.channels ?? ["wechat"]);
  const topo = isTopology(given) ? given : await ensureTopology(o.nc, { ...given, channels: channels ?? [], log: o.log });
  const channel = o.createChannel(topo);
  const ch = channel.name;
  if (channels && !channels.includes(ch)) throw new Error(`channel ${ch} has no SENDS consumer: add it to the topology's channels`);
  const js = jetstream(o.nc);
  const consumer = Consumers.sender(ch);
  // Hot-path writes (record, sent fact, confirmed ack) go through one pipelined reply subscription.
  const pipeline = new JsPipeline(o.nc, { fallback: js });
  // The quota and token-refresh-budget alerts belong to the alerting unit (libs/alerting).
  const onAlert = createProviderAlert({ js, log: o.log, metrics: o.metrics, ...(o.now ? { now: o.now } : {}) });
  const handle = createSendHandler({
    js,
    jsm: topo.jsm,
    publisher: pipeline,
    records: new RecordStore(topo.buckets.records, new KvWriter(topo.buckets.records, pipeline, Buckets.records)),
    channel,
    metrics: o.metrics,
    log: o.log,
    retry: o.retry,
    ...(o.random ? { random: o.random } : {}),
    quotaParkMs: o.quotaParkMs,
    ...(o.quotaResumeSpreadMs !== undefined ? { quotaResumeSpreadMs: o.quotaResumeSpreadMs } : {}),
    ...(o.now ? { now: o.now } : {}),
    onAlert,
  });
  // Off unless asked for (main.ts asks, from QUOTA_POLL_MS): in-process test senders make no extra calls.
  const quotaPoll = o.quotaPoll ?? false;
  const quota =
    quotaPoll && channel.quota && channel.account
      ? new QuotaGovernor({
          channel: channel as typeof channel & Required<Pick<typeof channel, "quota" | "account">>,
          kv: topo.buckets.tokens,
          replicaId: quotaPoll.replicaId ?? `${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
          metrics: o.metrics,
          log: o.log,
          onAlert,
          alertShare: quotaPoll.alertShare,
          intervalMs: quotaPoll.intervalMs,
          ...(o.now ? { now: o.now } : {}),
        })
      : null;
  // A throw is an infrastructure error (no call was counted): back off, doubling per delivery.
  const actor = new Actor({
    js,
    stream: Streams.sends,
    consumer,
    concurrency: o.concurrency,
    handle,
    log: o.log,
    ackWith: pipeline,
    errorDelayMs: INFRA_RETRY_BASE_MS,
    errorDelayMaxMs: INFRA_RETRY_MAX_MS,
  });
  await actor.start();
  quota?.start();
  o.log.info({ channel: ch, consumer, concurrency: o.concurrency, quota_poll_ms: quota?.intervalMs ?? null }, "sender started");

  let closing: Promise<void> | null = null;
  return {
    actor,
    quota,
    async ready() {
      if (o.nc.isClosed()) return false;
      await topo.jsm.consumers.info(Streams.sends, consumer);
      return true;
    },
    async refreshGauges() {
      const ci = await topo.jsm.consumers.info(Streams.sends, consumer);
      o.metrics.consumerPending.set({ stream: Streams.sends, consumer }, ci.num_pending);
      o.metrics.consumerAckPending.set({ stream: Streams.sends, consumer }, ci.num_ack_pending);
      o.metrics.inFlight.set({ actor: consumer }, actor.busy);
    },
    close() {
      closing ??= (async () => {
        await quota?.stop();
        await actor.close();
        pipeline.close();
        await channel.close();
      })();
      return closing;
    },
  };
}
