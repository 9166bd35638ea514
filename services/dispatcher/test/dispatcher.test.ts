import t from "tap";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { NatsServer } from "@notify/nats-server";
import { RecordStore, decodeJob, ensureTopology, openBuckets } from "@notify/nats";
import { HeaderNames, Status, Streams, Subjects, encodeJson, lockKey, sendIdFor, templateKey, type EventEnvelope } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { rejectedRecordId, startDispatcher, type DispatcherService } from "@notify/dispatcher";
import { waitFor } from "../../../test/support/wait.js";
import { paidEvent, paidTemplate } from "../../../test/support/fixtures.js";

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let records: RecordStore;
let dispatcher: DispatcherService;
const metrics = createMetrics("dispatcher-test");
let crashNext = false;

t.before(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  const topo = await ensureTopology(nc);
  records = new RecordStore(topo.buckets.records);
  await topo.buckets.templates.put(templateKey("order.paid", "wechat", "zh-CN"), encodeJson(paidTemplate()));
  await topo.buckets.templates.put(templateKey("order.paid", "wechat", "en"), encodeJson(paidTemplate({ language: "en", template_id: "TPL_PAID_EN" })));
  await topo.buckets.templates.put(templateKey("order.cancelled", "wechat", "zh-CN"), encodeJson(paidTemplate({ event: "order.cancelled", template_id: "TPL_CANCEL", enabled: false })));
  dispatcher = await startDispatcher({
    nc,
    log: createLogger({ name: "dispatcher", level: "silent" }),
    metrics,
    channels: ["wechat"],
    concurrency: 16,
    afterClaim: () => {
      if (crashNext) {
        crashNext = false;
        throw new Error("simulated crash between claim and publish");
      }
    },
  });
});
t.teardown(async () => {
  await dispatcher.close();
  await nc.close();
  await server.stop();
});

async function publish(env: EventEnvelope | Record<string, unknown> | string, subject?: string, msgId?: string) {
  const body = typeof env === "string" ? new TextEncoder().encode(env) : encodeJson(env);
  const subj = subject ?? Subjects.event((env as EventEnvelope).event);
  const id = msgId ?? (env as EventEnvelope).id;
  return js.publish(subj, body, id ? { msgID: id } : {});
}

const sid = (e: EventEnvelope) => sendIdFor({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel: "wechat" });

async function jobsFor(sendId: string) {
  const jobs = [];
  const si = await jsm.streams.info(Streams.sends);
  for (let seq = si.state.first_seq; seq <= si.state.last_seq && si.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(Streams.sends, { seq }).catch(() => null);
    if (m && m.header.get(HeaderNames.sendId) === sendId) jobs.push(decodeJob(m.data));
  }
  return jobs;
}

t.test("dispatcher - order.paid with an enabled template queues one rendered job", async (t) => {
  const e = paidEvent();
  await publish(e);
  const rec = await waitFor(async () => (await records.get(sid(e)))?.record, "queued record");
  t.equal(rec.status, Status.queued);
  t.equal(rec.template_id, "TPL_PAID_ZH");
  const jobs = await waitFor(async () => { const j = await jobsFor(sid(e)); return j.length ? j : null; }, "job in SENDS");
  t.equal(jobs.length, 1);
  t.same(jobs[0]!.payload.data, { thing1: { value: "West Lake night tour" }, amount2: { value: "¥128.5" }, character_string3: { value: e.order_id } });
  t.equal(jobs[0]!.payload.client_msg_id, sid(e), "client_msg_id is the send_id");
  t.equal(jobs[0]!.payload.touser, e.recipient.openid);
});

t.test("dispatcher - disabled template: recorded skipped, nothing queued", async (t) => {
  const e = paidEvent({ event: "order.cancelled" });
  await publish(e);
  const rec = await waitFor(async () => (await records.get(sid(e)))?.record, "skipped record");
  t.equal(rec.status, Status.skipped);
  t.equal(rec.reason, "disabled");
  t.same(await jobsFor(sid(e)), []);
});

t.test("dispatcher - no template: recorded skipped(no_template)", async (t) => {
  const e = paidEvent({ event: "ticket.expired", ticket_id: "T-9" });
  await publish(e);
  const rec = await waitFor(async () => (await records.get(sid(e)))?.record, "skipped record");
  t.equal(rec.status, Status.skipped);
  t.equal(rec.reason, "no_template");
});

t.test("dispatcher - payload missing a schema field: failed(schema) naming it, not retried", async (t) => {
  const e = paidEvent({ data: { title: "no amount" } });
  await publish(e);
  const rec = await waitFor(async () => (await records.get(sid(e)))?.record, "failed record");
  t.equal(rec.status, Status.failed);
  t.equal(rec.reason, "schema");
  t.match(rec.last_error, /amount/);
  t.same(await jobsFor(sid(e)), []);
  const ci = await jsm.consumers.info(Streams.events, "dispatcher");
  await waitFor(async () => (await jsm.consumers.info(Streams.events, "dispatcher")).num_ack_pending === 0, "event acked");
  t.equal(ci.num_redelivered, 0, "never redelivered");
});

t.test("dispatcher - malformed envelopes are recorded rejected with the reason", async (t) => {
  await publish("{not json", "events.order.paid", "bad-json-1");
  await publish({ id: "bad-2", event: "order.paid" }, "events.order.paid", "bad-2");
  await publish({ ...paidEvent(), id: "bad-3", event: "order.refunded" }, "events.order.refunded", "bad-3");
  await publish({ ...paidEvent(), id: "bad-4" }, "events.ticket.expired", "bad-4");
  const expect: [string, string, RegExp][] = [
    ["bad-json-1", "not_json", /not JSON/],
    ["bad-2", "invalid", /occurred_at|order_id|recipient/],
    ["bad-3", "invalid", /event/],
    ["bad-4", "subject_mismatch", /published on events.ticket.expired/],
  ];
  for (const [id, reason, msg] of expect) {
    const rec = await waitFor(async () => (await records.get(rejectedRecordId(id, 0)))?.record, `rejected ${id}`);
    t.equal(rec.status, Status.rejected, id);
    t.equal(rec.reason, reason, id);
    t.match(rec.last_error, msg, id);
  }
});

t.test("dispatcher - same business key with a new event id is a duplicate, not re-sent", async (t) => {
  const first = paidEvent();
  await publish(first);
  await waitFor(async () => (await jobsFor(sid(first))).length === 1, "first job");
  const before = (await metrics.duplicatesTotal.get()).values[0]?.value ?? 0;
  const dup = { ...first, id: `${first.id}-again` };
  await publish(dup);
  await waitFor(async () => ((await metrics.duplicatesTotal.get()).values[0]?.value ?? 0) > before, "duplicate counted");
  t.equal((await jobsFor(sid(first))).length, 1, "still one job");
  t.equal((await records.get(sid(first)))?.record.event_id, first.id, "the record keeps the first event");
});

t.test("dispatcher - locale fallback en-US → en → zh-CN", async (t) => {
  const us = paidEvent({ recipient: { openid: "oUS", locale: "en-US" } });
  const de = paidEvent({ recipient: { openid: "oDE", locale: "de-DE" } });
  await publish(us);
  await publish(de);
  t.equal((await waitFor(async () => (await records.get(sid(us)))?.record, "us")).template_id, "TPL_PAID_EN");
  t.equal((await waitFor(async () => (await records.get(sid(de)))?.record, "de")).template_id, "TPL_PAID_ZH");
});

t.test("dispatcher - a crash between claim and publish is repaired by the redelivery", async (t) => {
  const e = paidEvent();
  crashNext = true;
  await publish(e);
  // The handler throws after the claim: the event is nak'ed and comes back (same event id).
  const rec = await waitFor(async () => (await records.get(sid(e)))?.record, "record after redelivery", 15_000);
  t.equal(rec.status, Status.queued);
  const jobs = await waitFor(async () => { const j = await jobsFor(sid(e)); return j.length ? j : null; }, "job after redelivery");
  t.equal(jobs.length, 1, "exactly one job");
  const { locks } = await openBuckets(nc);
  t.ok(await locks.get(lockKey({ event: e.event, order_id: e.order_id, ticket_id: null, channel: "wechat" })), "the claim stands");
});

t.test("dispatcher - the same event re-published after its job exists is de-duplicated", async (t) => {
  const e = paidEvent();
  await publish(e);
  await waitFor(async () => (await jobsFor(sid(e))).length === 1, "job");
  // Same Nats-Msg-Id inside EVENTS' duplicate window: dropped by the server.
  const ack = await publish(e);
  t.ok(ack.duplicate, "EVENTS drops the duplicate publish");
  // Past the window the dispatcher sees it again: record queued with the same event id → republish, SENDS de-dups.
  const late = await js.publish(Subjects.event(e.event), encodeJson(e), { msgID: `${e.id}#late` });
  await waitFor(async () => {
    const ci = await jsm.consumers.info(Streams.events, "dispatcher");
    return ci.ack_floor.stream_seq >= late.seq;
  }, "late copy handled");
  t.equal((await jobsFor(sid(e))).length, 1, "still one job");
});
