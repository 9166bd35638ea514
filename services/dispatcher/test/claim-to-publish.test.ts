import t from "tap";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { NatsServer } from "@notify/nats-server";
import { DISPATCHER_MAX_DELIVER, JOB_HEADER_ROOM, RecordStore, decodeJob, ensureTopology, streamConfigs } from "@notify/nats";
import { FailReason, HeaderNames, Status, Streams, Subjects, decodeJson, encodeJson, lockKey, sendIdFor, templateKey, type EventEnvelope, type LockValue, type SendJob } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { startDispatcher, type DispatcherService } from "@notify/dispatcher";
import { waitFor } from "../../../test/support/wait.js";
import { paidEvent, paidTemplate } from "../../../test/support/fixtures.js";

// A small bus limit keeps the "max_payload-sized" events small.
const MAX_PAYLOAD = 32 * 1024;

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let records: RecordStore;
let locks: KV;
let dispatcher: DispatcherService;

t.before(async () => {
  server = await NatsServer.start({ extraConfig: `max_payload: ${MAX_PAYLOAD}` });
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  const topo = await ensureTopology(nc);
  records = new RecordStore(topo.buckets.records);
  locks = topo.buckets.locks;
  // WeChat's keyword rules cut data fields to 20 characters; the link is not cut, so a long
  // title makes a long job.
  await topo.buckets.templates.put(templateKey("order.paid", "wechat", "zh-CN"), encodeJson(paidTemplate({ url: "https://m.example.com/orders/{{title}}" })));
  dispatcher = await startDispatcher({ nc, log: createLogger({ name: "dispatcher", level: "silent" }), metrics: createMetrics("claim-test"), channels: ["wechat"], concurrency: 16, infraRetry: { baseMs: 20, maxMs: 200 } });
});
t.teardown(async () => {
  await dispatcher.close();
  await nc.close();
  await server.stop();
});

const keyOf = (e: EventEnvelope) => ({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel: "wechat" });
const sid = (e: EventEnvelope) => sendIdFor(keyOf(e));
const lk = (e: EventEnvelope) => lockKey(keyOf(e));
/** The same business key as `e`, from a new event. */
const again = (e: EventEnvelope, over: Partial<EventEnvelope> = {}) => paidEvent({ order_id: e.order_id, ...over });

const publish = (e: EventEnvelope) => js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });

async function jobsFor(sendId: string): Promise<SendJob[]> {
  const jobs: SendJob[] = [];
  const si = await jsm.streams.info(Streams.sends);
  for (let seq = si.state.first_seq; seq <= si.state.last_seq && si.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(Streams.sends, { seq }).catch(() => null);
    if (m && m.header.get(HeaderNames.sendId) === sendId) jobs.push(decodeJob(m.data));
  }
  return jobs;
}

const recordOf = (e: EventEnvelope, status: Status) =>
  waitFor(async () => {
    const r = (await records.get(sid(e)))?.record;
    return r?.status === status && r.event_id === e.id ? r : null;
  }, `${status} record of ${e.id}`, 30_000);

/** Every event handled and acked (none waiting for a redelivery). */
const settled = () =>
  waitFor(async () => {
    const ci = await jsm.consumers.info(Streams.events, "dispatcher");
    return ci.num_pending === 0 && ci.num_ack_pending === 0;
  }, "events acked", 30_000);

t.test("a max_payload-sized event: failed(too_large) naming the limit, key not held; a smaller event for the key is sent", async (t) => {
  const big = paidEvent({ data: { amount: 1, title: "x".repeat(MAX_PAYLOAD - 1500) } });
  const ack = await publish(big);
  t.ok(ack.seq > 0, "the event itself fits the bus");
  const rec = await recordOf(big, Status.failed);
  t.equal(rec.reason, FailReason.tooLarge);
  t.match(rec.last_error, new RegExp(`at most ${MAX_PAYLOAD - JOB_HEADER_ROOM}.*max_payload ${MAX_PAYLOAD}`));
  t.equal(await locks.get(lk(big)), null, "the business key was never claimed");
  await settled();
  t.same(await jobsFor(sid(big)), [], "no job");

  const small = again(big);
  await publish(small);
  await recordOf(small, Status.queued);
  const jobs = await waitFor(async () => { const j = await jobsFor(sid(small)); return j.length ? j : null; }, "job of the smaller event");
  t.equal(jobs.length, 1);
  t.equal(jobs[0]!.event_id, small.id);
  t.equal(decodeJson<LockValue>((await locks.get(lk(small)))!.value).event_id, small.id, "the smaller event holds the key");
});

t.test("a publish the stream refuses after the claim: failed(too_large), claim released, the key is sent later", async (t) => {
  // Fits the connection's max_payload (so the early check passes), not the stream's limit.
  await jsm.streams.update(Streams.sends, { max_msg_size: 4096 });
  t.teardown(() => jsm.streams.update(Streams.sends, { max_msg_size: -1 }).then(() => undefined));
  const big = paidEvent({ data: { amount: 1, title: "y".repeat(6000) } });
  await publish(big);
  const rec = await recordOf(big, Status.failed);
  t.equal(rec.reason, FailReason.tooLarge);
  t.match(rec.last_error, /refused by the bus/);
  await settled();
  t.equal((await locks.get(lk(big)))?.operation ?? "released", "DEL", "the claim was released");
  const history = await records.history(sid(big));
  t.same(history.map((r) => r.status), [Status.queued, Status.failed], "queued, then failed: never stranded at queued");

  const small = again(big);
  await publish(small);
  await recordOf(small, Status.queued);
  const jobs = await waitFor(async () => { const j = await jobsFor(sid(small)); return j.length ? j : null; }, "job of the smaller event");
  t.same(jobs.map((j) => j.event_id), [small.id]);
});

t.test("a claim left by a crashed dispatcher (claimed, no record, no job) is taken over", async (t) => {
  const e = paidEvent();
  // What a dispatcher that died right after its claim leaves behind, after its event ran out of deliveries.
  await locks.create(lk(e), encodeJson({ send_id: sid(e), event_id: "evt_crashed", at: new Date().toISOString() } satisfies LockValue));
  const later = again(e);
  await publish(later);
  await recordOf(later, Status.queued);
  const jobs = await waitFor(async () => { const j = await jobsFor(sid(e)); return j.length ? j : null; }, "job");
  t.same(jobs.map((j) => j.event_id), [later.id]);
  t.equal(decodeJson<LockValue>((await locks.get(lk(e)))!.value).event_id, later.id, "the claim now names the event that sent");
});

t.test("many events racing for one stale claim: exactly one job", async (t) => {
  const e = paidEvent();
  await locks.create(lk(e), encodeJson({ send_id: sid(e), event_id: "evt_crashed", at: new Date().toISOString() } satisfies LockValue));
  const racers = Array.from({ length: 8 }, () => again(e));
  await Promise.all(racers.map(publish));
  await settled();
  const jobs = await jobsFor(sid(e));
  t.equal(jobs.length, 1, "one job");
  const rec = (await records.get(sid(e)))!.record;
  t.equal(rec.status, Status.queued);
  t.equal(rec.event_id, jobs[0]!.event_id, "the record names the event whose job went out");
  t.equal(decodeJson<LockValue>((await locks.get(lk(e)))!.value).event_id, jobs[0]!.event_id, "so does the claim");
});

t.test("a key still in flight is not taken over: the claim stands, nothing re-sent", async (t) => {
  const first = paidEvent();
  await publish(first);
  await waitFor(async () => (await jobsFor(sid(first))).length === 1, "first job");
  await publish(again(first));
  await settled();
  t.equal((await jobsFor(sid(first))).length, 1, "still one job");
  t.equal(decodeJson<LockValue>((await locks.get(lk(first)))!.value).event_id, first.id);
});

t.test(`an error on the event's last delivery (${DISPATCHER_MAX_DELIVER}) is recorded failed(dispatch), the claim released`, async (t) => {
  // No SENDS stream: every publish fails (retryable), until the deliveries run out.
  const sends = streamConfigs().find((c) => c.name === Streams.sends)!;
  await jsm.streams.delete(Streams.sends);
  const e = paidEvent();
  try {
    await publish(e);
    const rec = await recordOf(e, Status.failed);
    t.equal(rec.reason, FailReason.dispatch);
    t.match(rec.last_error, new RegExp(`after ${DISPATCHER_MAX_DELIVER} deliveries`));
    await settled();
    t.equal((await locks.get(lk(e)))?.operation, "DEL", "the claim was released");
  } finally {
    await jsm.streams.add({ ...sends, name: Streams.sends });
  }
  const later = again(e);
  await publish(later);
  await recordOf(later, Status.queued);
  t.same((await jobsFor(sid(e))).map((j) => j.event_id), [later.id], "the next event for the key is sent");
});
