import t from "tap";
import { HeaderNames, Status, Streams, decodeJson, sendIdFor, type SendJob, type SendRecord } from "@notify/contracts";
import { RecordStore, publishToDlq } from "@notify/nats";
import { AUTH, appFor, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);
const records = new RecordStore(nats.topology.buckets.records);
const js = nats.topology.jsm.jetstream();

const key = (order_id: string, ticket_id: string | null = null, event = "order.paid") => ({ event, order_id, ticket_id, channel: "wechat" });

function job(order_id: string, ticket_id: string | null = null): SendJob {
  const send_id = sendIdFor(key(order_id, ticket_id));
  return {
    send_id,
    event_id: `evt_${order_id}`,
    event: "order.paid",
    channel: "wechat",
    order_id,
    ticket_id,
    openid: "oTraveller1",
    language: "zh-CN",
    template_id: "TPL_PAID_V1",
    occurred_at: "2026-11-24T08:00:00Z",
    payload: { touser: "oTraveller1", template_id: "TPL_PAID_V1", client_msg_id: send_id, data: { thing1: { value: "West Lake" } } },
  };
}

function record(j: SendJob, status: SendRecord["status"], over: Partial<SendRecord> = {}): SendRecord {
  return {
    send_id: j.send_id,
    event_id: j.event_id,
    event: j.event,
    order_id: j.order_id,
    ticket_id: j.ticket_id,
    channel: j.channel,
    language: j.language,
    template_id: j.template_id,
    openid: j.openid,
    status,
    attempts: 0,
    occurred_at: j.occurred_at,
    updated_at: new Date().toISOString(),
    ...over,
  };
}

/** Drives a record through queued → retrying → dead and copies the job to the DLQ, as sender and dlq-monitor do. */
async function deadLetter(order_id: string, ticket_id: string | null = null, dead: Partial<SendRecord> = {}): Promise<{ job: SendJob; seq: number }> {
  const j = job(order_id, ticket_id);
  for (const [status, over] of [
    [Status.queued, {}],
    [Status.retrying, { attempts: 1, last_error: "errcode -1" }],
    [Status.dead, { attempts: 5, last_error: "errcode -1", reason: "max_deliveries", ...dead }],
  ] as const) {
    const w = await records.write(j.send_id, () => record(j, status, over));
    if (!w.written) throw new Error(`could not write ${status}`);
  }
  const ack = await publishToDlq(js, j, { send_id: j.send_id, attempts: 5, last_error: "errcode -1: system busy", reason: "max_deliveries" });
  return { job: j, seq: ack.seq };
}

t.test("gateway - send log by send_id and by business key, with the status history", async (t) => {
  const app = await appFor(t, nats);
  const unknown = await app.inject({ method: "GET", url: "/notifications/sends/snd_00000000000000000000000000000000", headers: AUTH });
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.json().error, "not_found");
  const invalid = await app.inject({ method: "GET", url: "/notifications/sends/bad%20id", headers: AUTH });
  t.equal(invalid.statusCode, 400, "an id that cannot be a KV key is a 400");

  const { job: j } = await deadLetter("O-LOG-1", "T-7");
  const byId = await app.inject({ method: "GET", url: `/notifications/sends/${j.send_id}`, headers: AUTH });
  t.equal(byId.statusCode, 200);
  const b = byId.json();
  t.equal(b.record.status, "dead");
  t.equal(b.record.attempts, 5);
  t.same(b.history.map((r: SendRecord) => r.status), ["queued", "retrying", "dead"], "every status, oldest first");
  t.equal(b.revision, (await records.get(j.send_id))!.revision);
  const light = await app.inject({ method: "GET", url: `/notifications/sends/${j.send_id}?history=false`, headers: AUTH });
  t.equal(light.json().record.status, "dead");
  t.notOk("history" in light.json(), "history=false skips the history for pollers");

  const byKey = await app.inject({ method: "GET", url: "/notifications/sends/by-key?event=order.paid&order_id=O-LOG-1&ticket_id=T-7&channel=wechat", headers: AUTH });
  t.equal(byKey.statusCode, 200);
  t.equal(byKey.json().send_id, j.send_id, "the business key gives the same send_id");
  const noTicket = await app.inject({ method: "GET", url: "/notifications/sends/by-key?event=order.paid&order_id=O-LOG-1", headers: AUTH });
  t.equal(noTicket.statusCode, 404, "ticket_id is part of the business key");
  const missing = await app.inject({ method: "GET", url: "/notifications/sends/by-key?order_id=O-LOG-1", headers: AUTH });
  t.equal(missing.statusCode, 400, "event is required");
});

t.test("gateway - DLQ list (paginated, by channel), inspect and discard", async (t) => {
  const app = await appFor(t, nats);
  const a = await deadLetter("O-DLQ-A");
  const b = await deadLetter("O-DLQ-B");
  const c = await deadLetter("O-DLQ-C");
  const smsJob = { ...job("O-DLQ-SMS"), channel: "sms" };
  await publishToDlq(js, smsJob, { send_id: smsJob.send_id, attempts: 1, last_error: "x", reason: "wechat_permanent" });

  const all = await app.inject({ method: "GET", url: "/notifications/dlq?limit=500", headers: AUTH });
  t.equal(all.statusCode, 200);
  const seqs = all.json().items.map((i: { seq: number }) => i.seq);
  t.ok([a.seq, b.seq, c.seq].every((s) => seqs.includes(s)), "all entries listed");
  t.equal(all.json().total, seqs.length);

  const page1 = await app.inject({ method: "GET", url: `/notifications/dlq?channel=wechat&from_seq=${a.seq}&limit=2`, headers: AUTH });
  const p1 = page1.json();
  t.same(p1.items.map((i: { seq: number }) => i.seq), [a.seq, b.seq]);
  t.equal(p1.next_seq, c.seq, "next_seq points at the next entry");
  const first = p1.items[0];
  t.equal(first.send_id, a.job.send_id);
  t.equal(first.attempts, 5);
  t.equal(first.reason, "max_deliveries");
  t.equal(first.last_error, "errcode -1: system busy");
  t.equal(first.channel, "wechat");
  t.equal(first.order_id, "O-DLQ-A");
  const page2 = (await app.inject({ method: "GET", url: `/notifications/dlq?channel=wechat&from_seq=${p1.next_seq}&limit=2`, headers: AUTH })).json();
  t.same(page2.items.map((i: { seq: number }) => i.seq), [c.seq], "the sms entry is filtered out");
  t.equal(page2.next_seq, undefined, "last page");

  const inspect = await app.inject({ method: "GET", url: `/notifications/dlq/${b.seq}`, headers: AUTH });
  t.equal(inspect.statusCode, 200);
  t.same(inspect.json().job, b.job, "the whole job");
  t.equal(inspect.json().record.status, "dead", "with the current record");

  const discard = await app.inject({ method: "DELETE", url: `/notifications/dlq/${b.seq}`, headers: AUTH });
  t.equal(discard.statusCode, 204);
  t.equal(await nats.topology.jsm.streams.getMessage(Streams.dlq, { seq: b.seq }), null, "gone from the DLQ stream");
  t.equal((await records.get(b.job.send_id))!.record.status, "dead", "the record stays dead");
  t.equal((await app.inject({ method: "DELETE", url: `/notifications/dlq/${b.seq}`, headers: AUTH })).statusCode, 404);
  t.equal((await app.inject({ method: "GET", url: `/notifications/dlq/${b.seq}`, headers: AUTH })).statusCode, 404);
  const skip = (await app.inject({ method: "GET", url: `/notifications/dlq?channel=wechat&from_seq=${a.seq}&limit=2`, headers: AUTH })).json();
  t.same(skip.items.map((i: { seq: number }) => i.seq), [a.seq, c.seq], "pagination skips deleted sequences");
  t.equal((await app.inject({ method: "GET", url: "/notifications/dlq/0", headers: AUTH })).statusCode, 400);
  t.equal((await app.inject({ method: "GET", url: "/notifications/dlq?limit=501", headers: AUTH })).statusCode, 400);
});

t.test("gateway - DLQ replay: record back to queued, job on SENDS under a fresh id, entry removed", async (t) => {
  const app = await appFor(t, nats);
  const { job: j, seq } = await deadLetter("O-REPLAY-1");
  const res = await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH });
  t.equal(res.statusCode, 200);
  const r = res.json();
  t.equal(r.status, "queued");
  t.equal(r.send_id, j.send_id);
  t.equal(r.msg_id, `${j.send_id}.replay.${seq}`, "a fresh message id gets through SENDS' duplicate window");
  t.equal(r.duplicate, false);

  const stored = await records.get(j.send_id);
  t.equal(stored!.record.status, "queued");
  t.equal(stored!.record.last_error, undefined, "the old error is cleared (it stays in the history)");
  t.same((await records.history(j.send_id)).map((x) => x.status), ["queued", "retrying", "dead", "queued"]);

  const m = await nats.topology.jsm.streams.getMessage(Streams.sends, { seq: r.sends_seq });
  t.ok(m, "the job is on SENDS");
  t.same(decodeJson<SendJob>(m!.data), j, "unchanged");
  t.equal(m!.header.get(HeaderNames.msgId), r.msg_id);
  t.equal(m!.header.get(HeaderNames.recordRevision), String(stored!.revision), "carries the queued record's revision for the sender's CAS");
  t.match(m!.header.get(HeaderNames.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.equal(await nats.topology.jsm.streams.getMessage(Streams.dlq, { seq }), null, "removed from the DLQ");
  // Keep the work queue clean for other tests.
  await nats.topology.jsm.streams.deleteMessage(Streams.sends, r.sends_seq);

  t.equal((await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH })).statusCode, 404, "a second replay finds nothing");
});

t.test("gateway - DLQ replay of a send dead-lettered past WeChat's de-duplication window clears uncertain_since (the operator chose to send again)", async (t) => {
  const app = await appFor(t, nats);
  const since = new Date(Date.now() - 11 * 60_000).toISOString();
  const { job: j, seq } = await deadLetter("O-REPLAY-UNCERTAIN", null, { attempts: 1, reason: "dedup_window_passed", uncertain_since: since });
  const shown = await app.inject({ method: "GET", url: `/notifications/sends/${j.send_id}`, headers: AUTH });
  t.equal(shown.json().record.uncertain_since, since, "the send log shows when the unanswered call began");
  const res = await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH });
  t.equal(res.statusCode, 200);
  const stored = (await records.get(j.send_id))!.record;
  t.equal(stored.status, "queued");
  t.equal(stored.uncertain_since, undefined, "the sender will call WeChat again instead of dead-lettering it at once");
  await nats.topology.jsm.streams.deleteMessage(Streams.sends, res.json().sends_seq);
});

t.test("gateway - DLQ replay refuses a send that was delivered meanwhile (409) and leaves the entry", async (t) => {
  const app = await appFor(t, nats);
  const j = job("O-REPLAY-2");
  await records.write(j.send_id, () => record(j, Status.queued));
  await records.write(j.send_id, () => record(j, Status.success, { attempts: 2, sent_at: new Date().toISOString() }));
  const ack = await publishToDlq(js, j, { send_id: j.send_id, attempts: 2, last_error: "late copy", reason: "max_deliveries" });
  const res = await app.inject({ method: "POST", url: `/notifications/dlq/${ack.seq}/replay`, headers: AUTH });
  t.equal(res.statusCode, 409);
  t.equal(res.json().error, "conflict");
  t.match(res.json().message, /discard/);
  t.equal(res.json().details.status, "success");
  t.ok(await nats.topology.jsm.streams.getMessage(Streams.dlq, { seq: ack.seq }), "the entry stays for the operator to discard");
  t.equal((await records.get(j.send_id))!.record.status, "success", "the record is untouched");
});
