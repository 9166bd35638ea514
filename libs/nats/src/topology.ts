import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, Consumers, Streams, Subjects } from "@notify/contracts";
import type { Logger } from "@notify/log";
import { TopologyMismatchError, isClusterForming, isConsumerNotFound, isStreamNotFound, type TopologyDifference } from "./errors.js";

const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;

/** WeChat's client_msg_id de-duplication window: the whole retry schedule must fit in it. */
export const WECHAT_DEDUP_WINDOW_MS = 10 * 60 * SECOND;
/**
 * Provider calls per job: the sender counts the calls it made (in the record), and after
 * the last one fails it dead-letters the job itself (DLQ copy, record `dead`, term).
 */
export const SENDER_MAX_ATTEMPTS = 5;
/**
 * max_deliver of every sender consumer: a backstop far above SENDER_MAX_ATTEMPTS. A
 * delivery that fails on our own infrastructure (a KV or stream request timing out while
 * a node is partitioned or a leader is re-elected) makes no call and backs off up to
 * INFRA_RETRY_MAX_MS, so this covers ~20 minutes of trouble before the server
 * gives up and the DLQ monitor's advisory path takes over. That path is not relied on:
 * nats-server can drop a max-delivered work-queue message (docs/DECISIONS.md).
 */
export const SENDER_MAX_DELIVER = 50;
/**
 * First and longest redelivery delay of a sender or dispatcher delivery that failed on our
 * infrastructure (the handler threw): doubling per delivery, so a leader election of 20 s
 * costs five deliveries, not twenty.
 */
export const INFRA_RETRY_BASE_MS = 1000;
export const INFRA_RETRY_MAX_MS = 30_000;
/**
 * max_deliver of the dispatcher: only infrastructure errors are retried (backing off up to
 * INFRA_RETRY_MAX_MS: ~2.5 minutes in all), the last try records the failure.
 */
export const DISPATCHER_MAX_DELIVER = 10;

export interface TopologyOptions {
  /** Replicas for streams and buckets (1 locally, 3 in a cluster). */
  replicas?: number;
  /**
   * Channels whose SENDS consumer this caller owns and creates (only senders pass this:
   * the consumer's ack wait follows the sender's WeChat timeout). Default none.
   */
  channels?: readonly string[];
  /**
   * Ack wait of sender consumers: how long a job held by a sender that died mid-call
   * waits before another replica gets it. Larger than the WeChat HTTP timeout.
   */
  senderAckWaitMs?: number;
  /** Bounds the jobs in flight across all replicas of one channel's senders. */
  senderMaxAckPending?: number;
  /** max_deliver of sender consumers (default SENDER_MAX_DELIVER; tests of the backstop set it low). */
  senderMaxDeliver?: number;
  /** TTL of idempotency locks; 0 keeps them forever. */
  lockTtlMs?: number;
  dlqMaxAgeMs?: number;
  /** What to do when an existing resource differs: log a warning, or throw. */
  onMismatch?: "warn" | "fail";
  /**
   * How long to keep retrying while the cluster forms (no meta leader, fewer peers than
   * `replicas`): services and the cluster start together in Compose and Kubernetes.
   */
  clusterWaitMs?: number;
  log?: Logger | undefined;
}

/**
 * Default ack wait of a sender consumer: 3× the WeChat timeout (at least 5 s), so a job in
 * a live sender (token fetch, send, one resend after a token refresh) is rarely handed to a
 * second replica, and a dead sender's job comes back within three time-outs.
 *
 * Sender consumers have no `backoff`: the retry schedule is the sender's own `nak(delay)`.
 * On nats-server 2.9 a consumer `backoff` is added to every delayed nak (see
 * docs/DECISIONS.md), so the configured schedule would not be the one that happens.
 */
export function defaultSenderAckWait(wechatTimeoutMs: number): number {
  return Math.max(3 * wechatTimeoutMs, 5 * SECOND);
}

interface Resolved {
  replicas: number;
  channels: readonly string[];
  senderAckWaitMs: number;
  senderMaxAckPending: number;
  senderMaxDeliver: number;
  lockTtlMs: number;
  dlqMaxAgeMs: number;
  onMismatch: "warn" | "fail";
}

function resolve(o: TopologyOptions): Resolved {
  const r: Resolved = {
    replicas: o.replicas ?? 1,
    channels: o.channels ?? [],
    senderAckWaitMs: o.senderAckWaitMs ?? defaultSenderAckWait(5 * SECOND),
    senderMaxAckPending: o.senderMaxAckPending ?? 1000,
    senderMaxDeliver: o.senderMaxDeliver ?? SENDER_MAX_DELIVER,
    lockTtlMs: o.lockTtlMs ?? 30 * DAY,
    dlqMaxAgeMs: o.dlqMaxAgeMs ?? 30 * DAY,
    onMismatch: o.onMismatch ?? "warn",
  };
  if (!Number.isFinite(r.senderAckWaitMs) || r.senderAckWaitMs < SECOND) throw new RangeError(`sender ack wait must be at least 1 s, not ${r.senderAckWaitMs}`);
  return r;
}

export function streamConfigs(o: TopologyOptions = {}): Partial<StreamConfig>[] {
  const r = resolve(o);
  const base = { storage: StorageType.File, num_replicas: r.replicas, discard: DiscardPolicy.Old };
  return [
    { ...base, name: Streams.events, subjects: [Subjects.eventsAll], retention: RetentionPolicy.Limits, duplicate_window: nanos(2 * 60 * SECOND), max_age: nanos(7 * DAY) },
    { ...base, name: Streams.sends, subjects: [Subjects.sendsAll], retention: RetentionPolicy.Workqueue, duplicate_window: nanos(2 * 60 * SECOND) },
    { ...base, name: Streams.dlq, subjects: [Subjects.dlqAll], retention: RetentionPolicy.Limits, max_age: nanos(r.dlqMaxAgeMs) },
    // Advisories are core messages: this stream keeps them while the DLQ monitor is down.
    { ...base, name: Streams.advisories, subjects: [Subjects.maxDeliveriesAll], retention: RetentionPolicy.Limits, max_age: nanos(7 * DAY) },
    { ...base, name: Streams.notifications, subjects: [Subjects.notificationsAll], retention: RetentionPolicy.Limits, max_age: nanos(7 * DAY) },
  ];
}

export interface BucketSpec {
  bucket: string;
  history: number;
  ttlMs: number;
  description: string;
}

export function bucketSpecs(o: TopologyOptions = {}): BucketSpec[] {
  const r = resolve(o);
  return [
    { bucket: Buckets.templates, history: 10, ttlMs: 0, description: "templates by <event>.<channel>.<language>; history is the edit audit" },
    { bucket: Buckets.locks, history: 1, ttlMs: r.lockTtlMs, description: "idempotency claims per business key" },
    { bucket: Buckets.records, history: 32, ttlMs: 0, description: "send records by send_id; history is the status history" },
    { bucket: Buckets.tokens, history: 5, ttlMs: 0, description: "shared WeChat access token" },
    // WeChat pushes a delivery receipt seconds to minutes after a send; 3 days covers its retries and a long outage of ours.
    { bucket: Buckets.msgids, history: 1, ttlMs: 3 * DAY, description: "WeChat msgid → send_id for delivery receipts; receipt de-duplication" },
  ];
}

export function consumerConfigs(o: TopologyOptions = {}): { stream: string; config: Partial<ConsumerConfig> }[] {
  const r = resolve(o);
  const out: { stream: string; config: Partial<ConsumerConfig> }[] = [
    {
      stream: Streams.events,
      config: {
        durable_name: Consumers.dispatcher,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(30 * SECOND),
        // Only infrastructure errors are retried; business outcomes are acked and recorded.
        max_deliver: DISPATCHER_MAX_DELIVER,
        max_ack_pending: 2000,
      },
    },
    {
      stream: Streams.advisories,
      config: { durable_name: Consumers.dlqMonitor, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: nanos(30 * SECOND), max_deliver: -1 },
    },
  ];
  for (const channel of r.channels) {
    out.push({
      stream: Streams.sends,
      config: {
        durable_name: Consumers.sender(channel),
        filter_subject: Subjects.send(channel),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_deliver: r.senderMaxDeliver,
        ack_wait: nanos(r.senderAckWaitMs),
        max_ack_pending: r.senderMaxAckPending,
      },
    });
  }
  return out;
}

export interface TopologyReport {
  created: string[];
  existing: string[];
  /** Existing resources brought to the wanted config (a sender consumer's old `backoff`). */
  updated: string[];
  differences: TopologyDifference[];
}

export interface Topology {
  jsm: JetStreamManager;
  buckets: { templates: KV; locks: KV; records: KV; tokens: KV; msgids: KV };
  report: TopologyReport;
}

/**
 * Creates every stream, consumer and bucket that is absent; leaves existing ones as
 * they are and reports differences (warn or fail as configured). Calling it twice is a
 * no-op the second time. EVENTS may belong to the publishers: it is never altered.
 */
export async function ensureTopology(nc: NatsConnection, opts: TopologyOptions = {}): Promise<Topology> {
  const r = resolve(opts);
  // checkAPI off: its one `$JS.API.INFO` would fail at once while the cluster forms; the
  // retried account-info call below does the same check.
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const report: TopologyReport = { created: [], existing: [], updated: [], differences: [] };
  const retry = clusterRetry(opts.clusterWaitMs ?? 180_000, opts.log);

  // `$JS.API.INFO` answers once this account's JetStream is reachable (a meta leader exists).
  await retry("jetstream account info", () => jsm.getAccountInfo());
  for (const cfg of streamConfigs(opts)) await retry(`stream ${cfg.name}`, () => ensureStream(jsm, cfg, report));
  const kvm = new Kvm(jetstream(nc));
  const kvs: Record<string, KV> = {};
  for (const spec of bucketSpecs(opts)) kvs[spec.bucket] = await retry(`bucket ${spec.bucket}`, () => ensureBucket(jsm, kvm, spec, r.replicas, report));
  for (const { stream, config } of consumerConfigs(opts)) await retry(`consumer ${stream}/${config.durable_name}`, () => ensureConsumer(jsm, stream, config, report));

  if (report.differences.length) {
    const err = new TopologyMismatchError(report.differences);
    if (r.onMismatch === "fail") throw err;
    opts.log?.warn({ differences: report.differences }, "existing NATS resources differ from the wanted config; left unchanged");
  }
  if (report.created.length) opts.log?.info({ created: report.created }, "nats topology created");
  if (report.updated.length) opts.log?.info({ updated: report.updated }, "nats topology updated: consumer backoff removed or max_deliver raised");
  return {
    jsm,
    report,
    buckets: {
      templates: kvs[Buckets.templates]!,
      locks: kvs[Buckets.locks]!,
      records: kvs[Buckets.records]!,
      tokens: kvs[Buckets.tokens]!,
      msgids: kvs[Buckets.msgids]!,
    },
  };
}

/** Opens the buckets without creating anything (for read-only users and tests). */
export async function openBuckets(nc: NatsConnection): Promise<Topology["buckets"]> {
  const kvm = new Kvm(jetstream(nc));
  const [templates, locks, records, tokens, msgids] = await Promise.all(
    [Buckets.templates, Buckets.locks, Buckets.records, Buckets.tokens, Buckets.msgids].map((b) => kvm.open(b)),
  );
  return { templates: templates!, locks: locks!, records: records!, tokens: tokens!, msgids: msgids! };
}

/**
 * Runs one topology step again, with back-off (0.25 s doubling to 5 s), while the cluster is
 * still forming; any other error, or one past the deadline (shared by every step), is thrown.
 * The steps are idempotent (look up, then create when absent), so a retry after a create
 * that did land only finds it existing.
 */
function clusterRetry(waitMs: number, log: Logger | undefined) {
  const deadline = Date.now() + waitMs;
  return async function retry<T>(what: string, step: () => Promise<T>): Promise<T> {
    for (let delay = 250, attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        if (!isClusterForming(err) || Date.now() + delay > deadline) throw err;
        log?.warn({ what, attempt, err: (err as Error).message, retry_in_ms: delay }, "nats cluster not ready; retrying");
        await new Promise((res) => setTimeout(res, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  };
}

async function ensureStream(jsm: JetStreamManager, want: Partial<StreamConfig>, report: TopologyReport): Promise<void> {
  const name = want.name!;
  try {
    const info = await jsm.streams.info(name);
    report.existing.push(`stream ${name}`);
    if (name === Streams.events) {
      // Owned by the publishers when it exists first: only check it covers our subjects.
      const covers = info.config.subjects?.some((s) => s === Subjects.eventsAll || s === ">");
      if (!covers) report.differences.push({ resource: `stream ${name}`, field: "subjects", want: want.subjects, have: info.config.subjects });
      return;
    }
    diff(`stream ${name}`, want, info.config as unknown as Record<string, unknown>, ["subjects", "retention", "storage", "num_replicas", "duplicate_window", "max_age"], report);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
    await jsm.streams.add({ ...want, name });
    report.created.push(`stream ${name}`);
  }
}

async function ensureBucket(jsm: JetStreamManager, kvm: Kvm, spec: BucketSpec, replicas: number, report: TopologyReport): Promise<KV> {
  const stream = `KV_${spec.bucket}`;
  try {
    const info = await jsm.streams.info(stream);
    report.existing.push(`bucket ${spec.bucket}`);
    diff(
      `bucket ${spec.bucket}`,
      { max_msgs_per_subject: spec.history, max_age: nanos(spec.ttlMs), num_replicas: replicas },
      info.config as unknown as Record<string, unknown>,
      ["max_msgs_per_subject", "max_age", "num_replicas"],
      report,
    );
    return await kvm.open(spec.bucket);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
    const kv = await kvm.create(spec.bucket, { history: spec.history, ttl: spec.ttlMs, replicas, storage: StorageType.File, description: spec.description });
    report.created.push(`bucket ${spec.bucket}`);
    return kv;
  }
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, want: Partial<ConsumerConfig>, report: TopologyReport): Promise<void> {
  const name = want.durable_name!;
  let info;
  try {
    info = await jsm.consumers.info(stream, name);
  } catch (err) {
    if (!isConsumerNotFound(err)) throw err;
    await jsm.consumers.add(stream, want);
    report.created.push(`consumer ${stream}/${name}`);
    return;
  }
  report.existing.push(`consumer ${stream}/${name}`);
  if (info.config.backoff?.length && !want.backoff) {
    // Made by an earlier version with a `backoff`, which nats-server 2.9 adds to every
    // delayed nak: converge on the plain ack wait so the retry schedule is the sender's.
    info = await jsm.consumers.update(stream, name, { backoff: undefined, ...(want.ack_wait !== undefined ? { ack_wait: want.ack_wait } : {}) });
    report.updated.push(`consumer ${stream}/${name}`);
  }
  const maxDeliver = info.config.max_deliver ?? -1;
  if (want.max_deliver !== undefined && maxDeliver > 0 && (want.max_deliver < 0 || want.max_deliver > maxDeliver)) {
    // Made by an earlier version whose sender consumers gave up after 5 deliveries, so an
    // infrastructure error could exhaust them without a call: raise it to the backstop.
    info = await jsm.consumers.update(stream, name, { max_deliver: want.max_deliver });
    if (!report.updated.includes(`consumer ${stream}/${name}`)) report.updated.push(`consumer ${stream}/${name}`);
  }
  diff(`consumer ${stream}/${name}`, want, info.config as unknown as Record<string, unknown>, ["filter_subject", "ack_policy", "ack_wait", "max_deliver", "backoff", "max_ack_pending"], report);
}

function diff(resource: string, want: Record<string, unknown>, have: Record<string, unknown>, fields: string[], report: TopologyReport): void {
  for (const field of fields) {
    if (!(field in want) || want[field] === undefined) continue;
    const w = normalise(want[field]);
    const h = normalise(have[field]);
    if (JSON.stringify(w) !== JSON.stringify(h)) report.differences.push({ resource, field, want: want[field], have: have[field] });
  }
}

function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return [...v].sort();
  if (v === undefined) return 0;
  return v;
}

/**
 * True for what ensureTopology returned (every main.ts ensures it at start-up, see
 * @notify/runtime), false for options a service still has to apply (in-process use, tests).
 */
export function isTopology(t: TopologyOptions | Topology | false | undefined): t is Topology {
  return typeof t === "object" && "jsm" in t && "buckets" in t;
}
