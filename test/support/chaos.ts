// Shared pieces of the chaos suite (test/chaos): counting, summaries, service processes.
// Each scenario file starts its own nats-server (or cluster), its own WeChat simulator
// and its own service processes, and prints one summary line per scenario.
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { Streams, Subjects, decodeJson, encodeJson, sendIdFor, templateKey, type EventEnvelope, type SendRecord, type Template } from "@notify/contracts";
import { RecordStore, ensureTopology, publishConfirmed, type ConfirmedAck, type Topology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { startSimulator, type Simulator } from "@notify/wechat-simulator";
import { startService, type ServiceName, type ServiceProcess } from "./processes.js";
import { waitFor } from "./wait.js";

/** What a scenario counts at the end; printed as one line. */
export interface Tally {
  events: number;
  /** Business keys with at least one message at WeChat. */
  delivered: number;
  /** Business keys with no message and no dead letter. */
  lost: number;
  /** Business keys with more than one message (by client_msg_id or by openid). */
  duplicated: number;
  /** Business keys dead-lettered (and not delivered). */
  dlq: number;
}

export function summaryLine(scenario: string, t: Tally, ms: number, extra: Record<string, string | number> = {}): string {
  const tail = Object.entries(extra).map(([k, v]) => ` ${k}=${v}`).join("");
  return `scenario=${scenario} events=${t.events} delivered=${t.delivered} lost=${t.lost} duplicated=${t.duplicated} dlq=${t.dlq} time=${(ms / 1000).toFixed(1)}s${tail}`;
}

export const sendIdOf = (e: EventEnvelope, channel = "wechat"): string =>
  sendIdFor({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel });

/**
 * Counts at the simulator: every event has its own openid, so a second message shows up
 * both under its client_msg_id (= send_id) and under its openid.
 */
export function tally(sim: Simulator, events: readonly EventEnvelope[], deadLettered: ReadonlySet<string> = new Set()): Tally {
  const t: Tally = { events: events.length, delivered: 0, lost: 0, duplicated: 0, dlq: 0 };
  for (const e of events) {
    const sid = sendIdOf(e);
    const byId = sim.deliveriesFor(sid).length;
    const byOpenid = sim.messagesTo(e.recipient.openid).length;
    // Delivered means this event's recipient got this key's message (two keys that
    // collided on one send_id would show one message and one empty inbox).
    if (sim.messagesTo(e.recipient.openid).some((m) => m.client_msg_id === sid)) t.delivered++;
    else if (deadLettered.has(sid)) t.dlq++;
    else t.lost++;
    if (byId > 1 || byOpenid > 1) t.duplicated++;
  }
  return t;
}

/** Resolves when every event has at least one message at the simulator. */
export async function waitDelivered(sim: Simulator, events: readonly EventEnvelope[], timeoutMs: number, what = "every event delivered"): Promise<void> {
  const pending = new Map(events.map((e) => [sendIdOf(e), e.recipient.openid]));
  await waitFor(() => {
    for (const [sid, openid] of pending) if (sim.deliveriesFor(sid).some((m) => m.touser === openid)) pending.delete(sid);
    return pending.size === 0;
  }, `${what} (${events.length} events)`, timeoutMs, 50);
}

/** Share of the events with a message at the simulator. */
export function deliveredShare(sim: Simulator, events: readonly EventEnvelope[]): number {
  let n = 0;
  for (const e of events) if (sim.deliveriesFor(sendIdOf(e)).length > 0) n++;
  return n / events.length;
}

/** The records of many sends, read with bounded concurrency. */
export async function readRecords(records: RecordStore, sendIds: readonly string[], concurrency = 64): Promise<Map<string, SendRecord | null>> {
  const out = new Map<string, SendRecord | null>();
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < sendIds.length) {
        const sid = sendIds[i++]!;
        out.set(sid, (await records.get(sid))?.record ?? null);
      }
    }),
  );
  return out;
}

/** Counts records by status. */
export function statusCounts(recs: Map<string, SendRecord | null>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of recs.values()) {
    const k = r?.status ?? "missing";
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Stores a template straight in the KV bucket (what the gateway does after validation). */
export async function putTemplate(kv: KV, t: Template): Promise<void> {
  await kv.put(templateKey(t.event, t.channel, t.language), encodeJson(t));
}

const managers = new WeakMap<JetStreamClient, Promise<JetStreamManager>>();
const jsmOf = (js: JetStreamClient): Promise<JetStreamManager> => {
  let m = managers.get(js);
  if (!m) managers.set(js, (m = js.jetstreamManager()));
  return m;
};

/**
 * Publishes like a well-behaved publisher: with `Nats-Msg-Id` = event id, retrying until
 * JetStream acknowledges (a retry inside the duplicate window is stored once); a
 * "duplicate" answer is checked against EVENTS (publishConfirmed).
 */
export async function publishReliably(js: JetStreamClient, e: EventEnvelope, deadlineMs = 60_000): Promise<ConfirmedAck> {
  const until = Date.now() + deadlineMs;
  let delay = 50;
  for (;;) {
    try {
      return await publishConfirmed(js, await jsmOf(js), Streams.events, Subjects.event(e.event), encodeJson(e), { msgID: e.id, timeout: 2000 });
    } catch (err) {
      if (Date.now() > until) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
    }
  }
}

/**
 * Resolves when the SENDS work queue holds nothing (every job acked, termed or removed).
 * On a time-out the error says what is left: the consumer's counters and each job's record.
 */
export async function waitSendsEmpty(jsm: JetStreamManager, timeoutMs = 30_000, records?: RecordStore): Promise<void> {
  try {
    await waitFor(async () => (await jsm.streams.info(Streams.sends)).state.messages === 0, "SENDS to be empty", timeoutMs, 100);
  } catch (err) {
    const ci = await jsm.consumers.info(Streams.sends, "sender-wechat").catch(() => null);
    const left = await sendsLeftovers(jsm);
    const recs = records ? await readRecords(records, left.map((l) => l.send_id)) : new Map<string, SendRecord | null>();
    const detail = left.slice(0, 20).map((l) => `seq ${l.seq} ${l.send_id} ${recs.get(l.send_id)?.status ?? "?"}/${recs.get(l.send_id)?.attempts ?? "?"}`);
    throw new Error(
      `${(err as Error).message}: ${left.length} left; consumer pending=${ci?.num_pending} ack_pending=${ci?.num_ack_pending} redelivered=${ci?.num_redelivered} ack_floor=${ci?.ack_floor.stream_seq}\n${detail.join("\n")}`,
    );
  }
}

/** Jobs still stored in SENDS (send_id and stream sequence). */
export async function sendsLeftovers(jsm: JetStreamManager): Promise<{ seq: number; send_id: string }[]> {
  const out: { seq: number; send_id: string }[] = [];
  const { state } = await jsm.streams.info(Streams.sends);
  let seq = state.first_seq;
  while (state.messages > 0 && seq <= state.last_seq) {
    // next_by_subj (nats-server 2.9+) skips deleted sequences in one request.
    const m = await jsm.streams.getMessage(Streams.sends, { seq, next_by_subj: Subjects.sendsAll } as unknown as { seq: number }).catch(() => null);
    if (!m) break;
    out.push({ seq: m.seq, send_id: decodeJson<{ send_id: string }>(m.data).send_id });
    seq = m.seq + 1;
  }
  return out;
}

/** Percentile of a list of numbers (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Environment every worker process gets in the chaos suite (values small so faults resolve fast). */
export function workerEnv(natsUrl: string | readonly string[], sim: Simulator, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NATS_URL: typeof natsUrl === "string" ? natsUrl : natsUrl.join(","),
    WECHAT_API_BASE: sim.url,
    WECHAT_APP_ID: sim.appId,
    WECHAT_APP_SECRET: "local-simulator-secret",
    WECHAT_TIMEOUT_MS: "1000",
    SENDER_ACK_WAIT_MS: String(CHAOS_ACK_WAIT_MS),
    RETRY_BASE_MS: "50",
    RETRY_JITTER: "0",
    SENDER_CONCURRENCY: "32",
    LOG_LEVEL: "info",
    ...extra,
  };
}

/** Ack wait of the sender consumer: a job held by a sender that died comes back after this (> WECHAT_TIMEOUT_MS). */
export const CHAOS_ACK_WAIT_MS = 1500;

/**
 * Every service process a test file starts, so one teardown ends them all (SIGKILL for
 * the ones still running: the store dirs go with the nats-server anyway).
 */
export class Processes {
  readonly all: ServiceProcess[] = [];

  start(name: ServiceName, env: Record<string, string>, label: string = name, script?: string): ServiceProcess {
    const p = startService(name, env, label, script);
    this.all.push(p);
    return p;
  }

  async startReady(name: ServiceName, env: Record<string, string>, label: string = name, timeoutMs = 30_000, script?: string): Promise<ServiceProcess> {
    const p = this.start(name, env, label, script);
    await p.ready(timeoutMs);
    return p;
  }

  /** Processes that died without being asked to (a crash the scenario did not cause). */
  unexpectedExits(killed: ReadonlySet<ServiceProcess>): ServiceProcess[] {
    return this.all.filter((p) => !p.alive && !killed.has(p));
  }

  /** SIGTERM (a graceful drain), then SIGKILL for any process still there after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.allSettled(
      this.all.map(async (p) => {
        const timer = setTimeout(() => void p.kill("SIGKILL"), graceMs);
        await p.stop();
        clearTimeout(timer);
      }),
    );
  }
}

/** Elapsed wall time, for the summary lines. */
export function stopwatch(): () => number {
  const t0 = Date.now();
  return () => Date.now() - t0;
}

/** What a scenario runs on: one nats-server with the topology, a WeChat simulator, a process set. */
export interface ChaosBed {
  server: NatsServer;
  nc: NatsConnection;
  topo: Topology;
  records: RecordStore;
  js: JetStreamClient;
  sim: Simulator;
  procs: Processes;
}

/** The set-up every single-server scenario starts with; everything is torn down with `t`. */
export async function chaosBed(t: { teardown(fn: () => unknown): void }): Promise<ChaosBed> {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  return { server, nc, topo, records: new RecordStore(topo.buckets.records), js: jetstream(nc), sim, procs };
}
