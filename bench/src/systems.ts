import path from "node:path";
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg, type OrderedConsumerOptions } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { Buckets, Streams, Subjects, encodeJson, sendIdFor, templateKey, type EventEnvelope, type Template } from "@notify/contracts";
import { JsPipeline, defaultSenderAckWait, ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { DEFAULT_APP_ID, DEFAULT_APP_SECRET, SimulatorControl, type SimMessage } from "@notify/wechat-simulator";
import { Proc, RedisServer, metricsUrl, root, spawnNode, startService, startSimulatorProc, track, untrack } from "./procs.js";
import { PeerNames, Skel, skeletonBuckets, skeletonConsumers, skeletonStreams } from "./skeleton-topology.js";
import { Gate, type ProcRef } from "./util.js";

export type SystemName = "pipeline" | "pipeline-baseline" | "nats-skeleton" | "nats-skeleton-design" | "nats-skeleton-http" | "nats-skeleton-stock" | "bullmq-skeleton";
type SkeletonName = "nats-skeleton" | "nats-skeleton-design" | "nats-skeleton-http" | "nats-skeleton-stock";

export interface Shape {
  /** Stage-2 processes (sender replicas). */
  senders: number;
  senderConcurrency: number;
  dispatcherConcurrency: number;
}

/** Completions so far and the time of the latest (epoch ms). */
export interface Progress {
  count: number;
  lastAt: number;
}

/**
 * One system under test, started fresh for one trial (its own server, store and
 * processes), so trials do not inherit each other's state.
 */
export interface Trial {
  readonly name: SystemName;
  procs(): ProcRef[];
  /** Worker processes only (for RSS). */
  workers(): ProcRef[];
  publish(e: EventEnvelope): Promise<unknown>;
  /** Publishes as fast as the system takes them. */
  publishMany(events: readonly EventEnvelope[]): Promise<void>;
  progress(): Promise<Progress>;
  /** End time (epoch ms) of each completed business key (order_id), the end point named by `endPoint`. */
  completions(): Promise<Map<string, number[]>>;
  readonly endPoint: string;
  /** Problems found: every expected key completed exactly once, nothing else. */
  verify(keys: ReadonlySet<string>): Promise<string[]>;
  stop(): Promise<void>;
}

/** Reads a whole stream (or its last value per subject) with an ordered consumer. */
export async function readStream(js: JetStreamClient, jsm: JetStreamManager, stream: string, opts: Partial<OrderedConsumerOptions>, each: (m: JsMsg) => void): Promise<void> {
  const si = await jsm.streams.info(stream);
  if (si.state.messages === 0) return;
  const c = await js.consumers.get(stream, opts);
  const it = await c.consume({ max_messages: 2000 });
  for await (const m of it) {
    each(m);
    if (m.info.pending === 0) break;
  }
  await it.close();
}

function nanosToMs(n: number): number {
  return n / 1e6;
}

export function benchTemplate(): Template {
  const at = new Date().toISOString();
  return {
    event: "order.paid",
    channel: "wechat",
    template_id: "TPL_PAID_ZH",
    enabled: true,
    language: "zh-CN",
    payload_schema: { type: "object", required: ["amount", "title"], properties: { amount: { type: "number" }, title: { type: "string" } } },
    data: { thing1: "{{title}}", amount2: "¥{{amount}}", character_string3: "{{order_id}}" },
    url: "https://m.example.com/orders/{{order_id}}",
    updated_at: at,
  };
}

async function publishWindow(events: readonly EventEnvelope[], window: number, one: (e: EventEnvelope) => Promise<unknown>): Promise<void> {
  const gate = new Gate(window);
  let failed: unknown = null;
  for (const e of events) {
    await gate.acquire();
    if (failed) throw failed;
    one(e)
      .catch((err: unknown) => (failed = err))
      .finally(() => gate.release());
  }
  await gate.drain();
  if (failed) throw failed;
}

export interface PipelineOptions extends Shape {
  simLatencyMs?: number;
  /** Extra node flags for the services (e.g. --cpu-prof). */
  nodeArgs?: string[];
  extraEnv?: Record<string, string>;
  /** Start the senders later (startSenders()), e.g. to measure them on a pre-filled queue. */
  deferSenders?: boolean;
  /** Run the services of another checkout (its `npm run build` output): a before/after baseline. */
  servicesRoot?: string;
}

/** Our system: nats-server, the simulator, one dispatcher and N senders, as operators run them. */
export class PipelineTrial implements Trial {
  get name(): "pipeline" | "pipeline-baseline" {
    return this.o.servicesRoot ? "pipeline-baseline" : "pipeline";
  }
  /** The publisher (the same cheap path for both JetStream systems). */
  private pub!: JsPipeline;
  readonly endPoint = "simulator accepted_at";
  senders: Proc[] = [];
  dispatcherMetrics = "";
  private sendIdToKey = new Map<string, string>();

  private constructor(
    readonly server: NatsServer,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly sim: { proc: Proc; url: string; control: SimulatorControl },
    readonly dispatcher: Proc,
    private readonly env: Record<string, string>,
    private readonly o: PipelineOptions,
  ) {}

  static async start(o: PipelineOptions): Promise<PipelineTrial> {
    const server = await NatsServer.start();
    track(server.pid);
    const [nc, sim] = await Promise.all([connect({ servers: server.url, noAsyncTraces: true, name: "bench" }), startSimulatorProc(o.simLatencyMs ?? 0, o.nodeArgs)]);
    const topo = await ensureTopology(nc, { channels: ["wechat"], senderAckWaitMs: defaultSenderAckWait(5000), senderMaxAckPending: 1000 });
    const t = benchTemplate();
    await topo.buckets.templates.put(templateKey(t.event, t.channel, t.language), encodeJson(t));
    const env = {
      NATS_URL: server.url,
      WECHAT_API_BASE: sim.url,
      WECHAT_APP_ID: DEFAULT_APP_ID,
      WECHAT_APP_SECRET: DEFAULT_APP_SECRET,
      SENDER_CONCURRENCY: String(o.senderConcurrency),
      DISPATCHER_CONCURRENCY: String(o.dispatcherConcurrency),
      ...o.extraEnv,
    };
    const dispatcher = startService("dispatcher", env, "dispatcher", o.nodeArgs ?? [], o.servicesRoot);
    const trial = new PipelineTrial(server, nc, jetstream(nc), await jetstreamManager(nc), { ...sim, control: new SimulatorControl(sim.url) }, dispatcher, env, o);
    trial.pub = new JsPipeline(nc);
    try {
      trial.dispatcherMetrics = metricsUrl(await dispatcher.waitReady());
      if (!o.deferSenders) await trial.startSenders(o.senders);
    } catch (err) {
      await trial.stop();
      throw err;
    }
    return trial;
  }

  async startSenders(n: number): Promise<void> {
    const started = Array.from({ length: n }, (_, i) => startService("sender", this.env, `sender-${this.senders.length + i + 1}`, this.o.nodeArgs ?? [], this.o.servicesRoot));
    this.senders.push(...started);
    const lines = await Promise.all(started.map((s) => s.waitReady()));
    this.senderMetrics.push(...lines.map(metricsUrl));
  }

  /** /metrics of each sender. */
  senderMetrics: string[] = [];

  /** Mean of a histogram over every sender (sum ÷ count), in the histogram's unit. */
  async senderHistogramMean(name: string): Promise<number> {
    let sum = 0;
    let count = 0;
    for (const url of this.senderMetrics) {
      sum += await this.counter(url, `${name}_sum`);
      count += await this.counter(url, `${name}_count`);
    }
    return count ? sum / count : Number.NaN;
  }

  procs(): ProcRef[] {
    return [{ label: "nats-server", pid: this.server.pid ?? -1 }, { label: "simulator", pid: this.sim.proc.pid }, ...this.workers()];
  }

  workers(): ProcRef[] {
    return [{ label: "dispatcher", pid: this.dispatcher.pid }, ...this.senders.map((s) => ({ label: s.label, pid: s.pid }))];
  }

  publish(e: EventEnvelope): Promise<unknown> {
    return this.pub.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
  }

  publishMany(events: readonly EventEnvelope[]): Promise<void> {
    return publishWindow(events, 1024, (e) => this.publish(e));
  }

  async progress(): Promise<Progress> {
    const si = await this.jsm.streams.info(Streams.notifications);
    return { count: si.state.messages, lastAt: si.state.messages ? Date.parse(si.state.last_ts) : 0 };
  }

  private keyOf(sendId: string): string | undefined {
    return this.sendIdToKey.get(sendId);
  }

  /** Call before completions()/verify(): maps send ids back to business keys. */
  learnKeys(keys: Iterable<string>): void {
    for (const k of keys) this.sendIdToKey.set(sendIdFor({ event: "order.paid", order_id: k, ticket_id: null, channel: "wechat" }), k);
  }

  /** Every message the simulator accepted (paged, oldest first). */
  async simMessages(): Promise<SimMessage[]> {
    const out: SimMessage[] = [];
    let after = 0;
    for (;;) {
      const page = await this.sim.control.messages({ after, limit: 10_000 });
      out.push(...page.messages);
      if (page.count < 10_000) return out;
      after = page.last_seq;
    }
  }

  async completions(): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const m of await this.simMessages()) {
      const k = (m.client_msg_id && this.keyOf(m.client_msg_id)) ?? `?${m.client_msg_id}`;
      const list = out.get(k);
      if (list) list.push(m.accepted_at);
      else out.set(k, [m.accepted_at]);
    }
    return out;
  }

  /** When each `notification.sent` fact was stored (the record says success just before). */
  async recordedAt(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    // One filter subject needs no server 2.10 feature when given as a plain stream read.
    await readStream(this.js, this.jsm, Streams.notifications, {}, (m) => {
      if (m.subject !== Subjects.sent) return;
      const f = m.json<{ send_id: string }>();
      const k = this.keyOf(f.send_id);
      if (k) out.set(k, nanosToMs(m.info.timestampNanos));
    });
    return out;
  }

  async verify(keys: ReadonlySet<string>): Promise<string[]> {
    this.learnKeys(keys);
    const problems: string[] = [];
    const delivered = await this.completions();
    let missing = 0;
    let dup = 0;
    let unexpected = 0;
    for (const k of keys) {
      const n = delivered.get(k)?.length ?? 0;
      if (n === 0) missing++;
      if (n > 1) dup += n - 1;
    }
    for (const k of delivered.keys()) if (!keys.has(k)) unexpected++;
    if (missing) problems.push(`pipeline: ${missing} of ${keys.size} business keys never reached the simulator`);
    if (dup) problems.push(`pipeline: ${dup} duplicate deliveries (same client_msg_id accepted twice)`);
    if (unexpected) problems.push(`pipeline: ${unexpected} unexpected client_msg_ids at the simulator`);
    // Every record final at success.
    const status = new Map<string, string>();
    await readStream(this.js, this.jsm, `KV_${Buckets.records}`, { deliver_policy: DeliverPolicy.LastPerSubject }, (m) => {
      const sendId = m.subject.slice(`$KV.${Buckets.records}.`.length);
      status.set(sendId, m.json<{ status: string }>().status);
    });
    let notSuccess = 0;
    for (const k of keys) {
      const s = status.get(sendIdFor({ event: "order.paid", order_id: k, ticket_id: null, channel: "wechat" }));
      if (s !== "success") notSuccess++;
    }
    if (notSuccess) problems.push(`pipeline: ${notSuccess} records are not at success`);
    return problems;
  }

  async counter(url: string, name: string): Promise<number> {
    const text = await (await fetch(url)).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.e+-]+)$/.exec(line);
      if (m && m[1] === name) sum += Number(m[3]);
    }
    return sum;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.senders.map((s) => s.stop()), this.dispatcher.stop()]);
    this.pub?.close();
    await this.nc.close().catch(() => undefined);
    await this.sim.proc.stop();
    await this.server.stop();
    untrack(this.server.pid);
  }
}

/** The bare JetStream two-stage skeleton (the ceiling). */
export class NatsSkeletonTrial implements Trial {
  private pub!: JsPipeline;
  readonly endPoint = "stage 2 done";

  private constructor(
    readonly name: SkeletonName,
    readonly server: NatsServer,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly stages: Proc[],
    /** nats-skeleton-http: the simulator stage 2 calls. */
    readonly sim: Proc | null,
  ) {}

  /**
   * nats-skeleton: the minimal list of operations on the lean client (the JsPipeline path
   * the services use); nats-skeleton-design: every operation the pipeline does, lean
   * client; nats-skeleton-http: the design skeleton whose stage 2 also makes the WeChat call
   * (the sender's client, the simulator as a process); nats-skeleton-stock: the minimal list
   * on the @nats-io client's own calls.
   */
  static async start(o: Shape, name: SkeletonName = "nats-skeleton", nodeArgs: string[] = []): Promise<NatsSkeletonTrial> {
    const client = name === "nats-skeleton-stock" ? "stock" : "lean";
    const server = await NatsServer.start();
    track(server.pid);
    const sim = name === "nats-skeleton-http" ? await startSimulatorProc(0, nodeArgs) : null;
    const nc = await connect({ servers: server.url, noAsyncTraces: true, name: "bench" });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    for (const s of skeletonStreams) await jsm.streams.add({ ...s, name: s.name! });
    const kvm = new Kvm(js);
    for (const b of skeletonBuckets) await kvm.create(b.bucket, { history: b.history, ttl: b.ttl, storage: "file" as never });
    for (const c of skeletonConsumers) await jsm.consumers.add(c.stream, c.config);
    const script = path.join(root, "bench", "dist", "skeleton-nats.js");
    const env = {
      NATS_URL: server.url,
      BENCH_CLIENT: client,
      BENCH_OPS: name === "nats-skeleton-design" || name === "nats-skeleton-http" ? "design" : "issue",
      ...(sim ? { BENCH_WECHAT_API_BASE: sim.url } : {}),
    };
    const stages = [
      spawnNode("stage-1", script, { ...env, BENCH_STAGE: "1", BENCH_CONCURRENCY: String(o.dispatcherConcurrency) }, /skeleton ready/),
      ...Array.from({ length: o.senders }, (_, i) => spawnNode(`stage-2.${i + 1}`, script, { ...env, BENCH_STAGE: "2", BENCH_CONCURRENCY: String(o.senderConcurrency) }, /skeleton ready/)),
    ];
    const trial = new NatsSkeletonTrial(name, server, nc, js, jsm, stages, sim?.proc ?? null);
    trial.pub = new JsPipeline(nc);
    try {
      await Promise.all(stages.map((s) => s.waitReady()));
    } catch (err) {
      await trial.stop();
      throw err;
    }
    return trial;
  }

  procs(): ProcRef[] {
    return [{ label: "nats-server", pid: this.server.pid ?? -1 }, ...(this.sim ? [{ label: "simulator", pid: this.sim.pid }] : []), ...this.workers()];
  }

  workers(): ProcRef[] {
    return this.stages.map((s) => ({ label: s.label, pid: s.pid }));
  }

  publish(e: EventEnvelope): Promise<unknown> {
    return this.pub.publish(Skel.eventSubject, encodeJson(e), { msgID: e.id });
  }

  publishMany(events: readonly EventEnvelope[]): Promise<void> {
    return publishWindow(events, 1024, (e) => this.publish(e));
  }

  async progress(): Promise<Progress> {
    const si = await this.jsm.streams.info(Skel.sent);
    return { count: si.state.messages, lastAt: si.state.messages ? Date.parse(si.state.last_ts) : 0 };
  }

  async completions(): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    await readStream(this.js, this.jsm, Skel.sent, {}, (m) => {
      const f = m.json<{ key: string; done: number }>();
      const list = out.get(f.key);
      if (list) list.push(f.done);
      else out.set(f.key, [f.done]);
    });
    return out;
  }

  verify(keys: ReadonlySet<string>): Promise<string[]> {
    return verifyCompletions(this.name, this, keys);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.stages.map((s) => s.stop()), ...(this.sim ? [this.sim.stop()] : [])]);
    this.pub?.close();
    await this.nc.close().catch(() => undefined);
    await this.server.stop();
    untrack(this.server.pid);
  }
}

async function verifyCompletions(name: string, t: Trial, keys: ReadonlySet<string>): Promise<string[]> {
  const done = await t.completions();
  let missing = 0;
  let dup = 0;
  let unexpected = 0;
  for (const k of keys) {
    const n = done.get(k)?.length ?? 0;
    if (n === 0) missing++;
    if (n > 1) dup += n - 1;
  }
  for (const k of done.keys()) if (!keys.has(k)) unexpected++;
  const problems: string[] = [];
  if (missing) problems.push(`${name}: ${missing} of ${keys.size} keys never completed`);
  if (dup) problems.push(`${name}: ${dup} duplicate completions`);
  if (unexpected) problems.push(`${name}: ${unexpected} unexpected completions`);
  return problems;
}

/** The peer: the same skeleton on BullMQ + Redis (AOF, fsync every second). */
export class BullmqSkeletonTrial implements Trial {
  readonly name = "bullmq-skeleton" as const;
  readonly endPoint = "stage 2 done";

  private constructor(
    readonly redisServer: RedisServer,
    readonly redis: Redis,
    readonly queue: Queue,
    readonly stages: Proc[],
  ) {}

  static async start(o: Shape, redisBin: string): Promise<BullmqSkeletonTrial> {
    const redisServer = await RedisServer.start(redisBin);
    const connection = { host: "127.0.0.1", port: redisServer.port, maxRetriesPerRequest: null };
    const redis = new Redis(connection);
    const queue = new Queue(PeerNames.events, { connection, defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000 } });
    const script = path.join(root, "bench", "dist", "skeleton-bullmq.js");
    const env = { REDIS_PORT: String(redisServer.port) };
    const stages = [
      spawnNode("stage-1", script, { ...env, BENCH_STAGE: "1", BENCH_CONCURRENCY: String(o.dispatcherConcurrency) }, /skeleton ready/),
      ...Array.from({ length: o.senders }, (_, i) => spawnNode(`stage-2.${i + 1}`, script, { ...env, BENCH_STAGE: "2", BENCH_CONCURRENCY: String(o.senderConcurrency) }, /skeleton ready/)),
    ];
    const trial = new BullmqSkeletonTrial(redisServer, redis, queue, stages);
    try {
      await Promise.all([queue.waitUntilReady(), ...stages.map((s) => s.waitReady())]);
    } catch (err) {
      await trial.stop();
      throw err;
    }
    return trial;
  }

  procs(): ProcRef[] {
    return [{ label: "redis-server", pid: this.redisServer.pid }, ...this.workers()];
  }

  workers(): ProcRef[] {
    return this.stages.map((s) => ({ label: s.label, pid: s.pid }));
  }

  publish(e: EventEnvelope): Promise<unknown> {
    return this.queue.add("event", e, { jobId: e.id });
  }

  async publishMany(events: readonly EventEnvelope[]): Promise<void> {
    // addBulk is BullMQ's fastest ingest path (one pipeline per chunk).
    const chunks: EventEnvelope[][] = [];
    for (let i = 0; i < events.length; i += 500) chunks.push(events.slice(i, i + 500) as EventEnvelope[]);
    const gate = new Gate(2);
    let failed: unknown = null;
    for (const c of chunks) {
      await gate.acquire();
      if (failed) throw failed;
      this.queue
        .addBulk(c.map((e) => ({ name: "event", data: e, opts: { jobId: e.id } })))
        .catch((err: unknown) => (failed = err))
        .finally(() => gate.release());
    }
    await gate.drain();
    if (failed) throw failed;
  }

  async progress(): Promise<Progress> {
    const count = await this.redis.xlen(PeerNames.sent);
    if (!count) return { count: 0, lastAt: 0 };
    const last = await this.redis.xrevrange(PeerNames.sent, "+", "-", "COUNT", 1);
    const fields = last[0]?.[1] ?? [];
    return { count, lastAt: Number(fields[fields.indexOf("done") + 1]) };
  }

  async completions(): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    let start = "-";
    for (;;) {
      const page = await this.redis.xrange(PeerNames.sent, start, "+", "COUNT", 10_000);
      for (const [, f] of page) {
        const k = f[f.indexOf("key") + 1]!;
        const done = Number(f[f.indexOf("done") + 1]);
        const list = out.get(k);
        if (list) list.push(done);
        else out.set(k, [done]);
      }
      if (page.length < 10_000) return out;
      start = `(${page.at(-1)![0]}`;
    }
  }

  verify(keys: ReadonlySet<string>): Promise<string[]> {
    return verifyCompletions(this.name, this, keys);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.stages.map((s) => s.stop()));
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
    await this.redisServer.stop();
  }
}
