/**
 * Test helpers for the DLQ monitor (kept out of test/: tap runs every file of a directory it is given).
 * They play the sender's part by hand, so real MAX_DELIVERIES advisories are raised by
 * a real nats-server without the sender service.
 */
import { randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { Consumers, Status, Streams, Subjects, decodeJson, recordFromJob, sendIdFor, type SendJob, type SendRecord } from "@notify/contracts";
import { RecordStore, decodeJob, ensureTopology, publishJob } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { waitFor } from "../../../test/support/wait.js";

export { waitFor };
// The alerting unit's tests use these too (libs/alerting/test).
export { captureLogger, startWebhookServer, type CapturedRequest } from "../../../test/support/webhook.js";

/** Ack wait of the test sender consumers: small, so a job left unacked comes back quickly. */
export const TEST_ACK_WAIT_MS = 1000;

export interface Env {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  records: RecordStore;
  close(): Promise<void>;
}

/**
 * A real nats-server with the whole topology and sender consumers for `channels`. The
 * consumers' max_deliver (the server's backstop) defaults to the sender's five attempts,
 * so the advisory path is exercised in seconds; sender tests pass the real one.
 */
export async function startEnv(channels: string[], serverOpts: Parameters<typeof NatsServer.start>[0] = {}, token?: string, senderMaxDeliver = 5): Promise<Env> {
  const server = await NatsServer.start(serverOpts);
  const nc = await connect({ servers: server.url, noAsyncTraces: true, ...(token ? { token } : {}) });
  const topo = await ensureTopology(nc, { channels, senderAckWaitMs: TEST_ACK_WAIT_MS, senderMaxDeliver });
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm: topo.jsm,
    records: new RecordStore(topo.buckets.records),
    async close() {
      await nc.close().catch(() => undefined);
      await server.stop();
    },
  };
}

let n = 0;

/** Queues one job the way the dispatcher does: `queued` record first, then the job on SENDS. */
export async function queueJob(env: Env, channel: string, traceparent?: string): Promise<{ job: SendJob; seq: number }> {
  n++;
  const orderId = `O-${process.pid}-${n}-${randomUUID().slice(0, 8)}`;
  const sendId = sendIdFor({ event: "order.paid", order_id: orderId, ticket_id: null, channel });
  const job: SendJob = {
    send_id: sendId,
    event_id: `evt_${randomUUID()}`,
    event: "order.paid",
    channel,
    order_id: orderId,
    ticket_id: null,
    openid: `oTest${n}`,
    language: "zh-CN",
    template_id: "TPL_PAID_ZH",
    occurred_at: new Date().toISOString(),
    payload: { touser: `oTest${n}`, template_id: "TPL_PAID_ZH", client_msg_id: sendId, data: { thing1: { value: "West Lake night tour" } } },
  };
  const record = recordFromJob(job);
  const created = await env.records.create(record);
  const ack = await publishJob(env.js, job, { ...(created.written ? { recordRevision: created.revision } : {}), traceparent });
  return { job, seq: ack.seq };
}

export const lastErrorOf = (attempt: number) => `HTTP 503: upstream unavailable (attempt ${attempt})`;

/**
 * Plays a sender whose every call fails: pulls from `sender-<channel>`, records
 * `retrying` (attempts, last_error) and naks, five times per job. After the fifth nak
 * it keeps a pull request open: nats-server 2.9 raises MAX_DELIVERIES only when it next
 * tries to deliver — then waits until ADVISORIES holds one advisory per job.
 */
export async function failJobs(env: Env, channel: string, jobs: { job: SendJob; seq: number }[]): Promise<void> {
  const consumer = await env.js.consumers.get(Streams.sends, Consumers.sender(channel));
  const mine = new Map(jobs.map((j) => [j.seq, j.job.send_id]));
  const deliveries = new Map<number, number>();
  const done = () => [...mine.keys()].every((seq) => (deliveries.get(seq) ?? 0) >= 5);
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`jobs did not reach five deliveries: ${JSON.stringify([...deliveries])}`);
    const m = await consumer.next({ expires: 1000 });
    if (!m) continue;
    const job = decodeJob(m.data);
    if (!mine.has(m.seq)) throw new Error(`unexpected job ${job.send_id} on ${channel}`);
    const attempts = m.info.deliveryCount;
    deliveries.set(m.seq, attempts);
    await env.records.write(job.send_id, (c) => (c ? { ...c, status: Status.retrying, attempts, last_error: lastErrorOf(attempts), updated_at: new Date().toISOString() } : null));
    // The last nak keeps a delay, like the sender's exponential one.
    m.nak(attempts >= 5 ? 50 : 0);
  }
  const seqs = [...mine.keys()];
  // A pending pull is what makes the server notice the exhausted deliveries.
  let stop = false;
  const puller = (async () => {
    while (!stop) {
      const extra = await consumer.next({ expires: 1000 });
      if (extra) throw new Error(`job ${extra.seq} delivered a sixth time`);
    }
  })();
  try {
    await waitFor(async () => {
      const seen = new Set((await advisories(env.jsm)).map((a) => a.stream_seq));
      return seqs.every((s) => seen.has(s));
    }, `MAX_DELIVERIES advisories for SENDS seqs ${seqs.join(",")}`);
  } finally {
    stop = true;
    await puller;
  }
}

export interface Advisory {
  seq: number;
  subject: string;
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
  data: Uint8Array;
}

export async function advisories(jsm: JetStreamManager): Promise<Advisory[]> {
  return (await streamMessages(jsm, Streams.advisories)).map((m) => ({ seq: m.seq, subject: m.subject, data: m.data, ...decodeJson<Omit<Advisory, "seq" | "subject" | "data">>(m.data) }));
}

/** Every message of a (small) stream, oldest first, optionally for one subject. */
export async function streamMessages(jsm: JetStreamManager, stream: string, subject?: string): Promise<StoredMsg[]> {
  const si = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  if (si.state.messages === 0) return out;
  for (let seq = si.state.first_seq; seq <= si.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m && (subject === undefined || m.subject === subject)) out.push(m);
  }
  return out;
}

export async function dlqEntries(jsm: JetStreamManager, sendId: string): Promise<StoredMsg[]> {
  return (await streamMessages(jsm, Streams.dlq)).filter((m) => m.header.get("Notify-Send-Id") === sendId);
}

export async function factsFor(jsm: JetStreamManager, subject: string, sendId: string): Promise<Record<string, unknown>[]> {
  return (await streamMessages(jsm, Streams.notifications, subject))
    .map((m) => decodeJson<Record<string, unknown>>(m.data))
    .filter((f) => f.send_id === sendId);
}

export async function alertFacts(jsm: JetStreamManager, kind?: string, channel?: string): Promise<Record<string, unknown>[]> {
  return (await streamMessages(jsm, Streams.notifications, Subjects.alert))
    .map((m) => decodeJson<Record<string, unknown>>(m.data))
    .filter((a) => (kind === undefined || a.kind === kind) && (channel === undefined || a.channel === channel));
}

/** Both messages of the advisory consumer are settled (nothing pending, nothing unacked). */
export async function advisoriesSettled(jsm: JetStreamManager): Promise<boolean> {
  const ci = await jsm.consumers.info(Streams.advisories, Consumers.dlqMonitor);
  return ci.num_pending === 0 && ci.num_ack_pending === 0;
}

/** Reads one sample of a counter from the registry (0 when absent). */
export async function counterValue(registry: { getSingleMetric(name: string): unknown }, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name) as { get(): Promise<{ values: { labels: Record<string, string | number>; value: number }[] }> } | undefined;
  if (!metric) return 0;
  const { values } = await metric.get();
  const v = values.find((s) => Object.entries(labels).every(([k, want]) => String(s.labels[k]) === want));
  return v?.value ?? 0;
}
