import t from "tap";
import { Consumers, Streams, Subjects, Status, decodeJson, type SentFact } from "@notify/contracts";
import { publishJob, readDlqMeta } from "@notify/nats";
import { Stack } from "../support/stack.js";
import { waitFor } from "../support/wait.js";
import { paidEvent, paidTemplate } from "../support/fixtures.js";

let stack: Stack;

t.before(async () => {
  // Small delays so five retries take well under a second.
  stack = await Stack.start({ senders: 1, retryBaseMs: 20, senderAckWaitMs: 2000 });
  await stack.putTemplate(paidTemplate());
  await stack.putTemplate(paidTemplate({ language: "en", template_id: "TPL_PAID_EN", data: { thing1: "{{title}}", amount2: "${{amount}}" } }));
  await stack.putTemplate(paidTemplate({ event: "order.cancelled", template_id: "TPL_CANCEL", enabled: false }));
});
t.teardown(() => stack.close());

async function sentFacts(sendId: string): Promise<SentFact[]> {
  const out: SentFact[] = [];
  const si = await stack.jsm.streams.info(Streams.notifications);
  for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
    const m = await stack.jsm.streams.getMessage(Streams.notifications, { seq }).catch(() => null);
    if (m?.subject === Subjects.sent) {
      const f = decodeJson<SentFact>(m.data);
      if (f.send_id === sendId) out.push(f);
    }
  }
  return out;
}

t.test("pipeline - order.paid with an enabled template sends exactly one rendered message", async (t) => {
  const e = paidEvent();
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.success);
  t.equal(rec.attempts, 1);
  t.ok(rec.sent_at && rec.wechat_msgid, "sent_at and WeChat msgid recorded");
  const msgs = stack.sim.deliveriesFor(stack.sendId(e));
  t.equal(msgs.length, 1, "one WeChat message");
  t.equal(msgs[0]!.touser, e.recipient.openid);
  t.equal(msgs[0]!.template_id, "TPL_PAID_ZH");
  t.same(msgs[0]!.data, { thing1: { value: "West Lake night tour" }, amount2: { value: "¥128.5" }, character_string3: { value: e.order_id } });
  t.equal(msgs[0]!.url, `https://m.example.com/orders/${e.order_id}`);
  const facts = await waitFor(async () => { const f = await sentFacts(stack.sendId(e)); return f.length ? f : null; }, "notification.sent");
  t.equal(facts.length, 1, "notification.sent published once");
  t.equal(facts[0]!.attempts, 1);
});

t.test("pipeline - template disabled: no message, record skipped", async (t) => {
  const e = paidEvent({ event: "order.cancelled" });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.skipped);
  t.equal(rec.reason, "disabled");
  t.equal(stack.sim.messagesTo(e.recipient.openid).length, 0);
});

t.test("pipeline - WeChat fails twice then succeeds: attempts = 3, one message", async (t) => {
  const e = paidEvent();
  stack.sim.setFault({ kind: "errcode", errcode: -1, openid: e.recipient.openid, times: 2 });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.success);
  t.equal(rec.attempts, 3);
  t.equal(stack.sim.deliveriesFor(stack.sendId(e)).length, 1);
  const history = await stack.records.history(stack.sendId(e));
  t.same(history.map((h) => h.status), ["queued", "retrying", "retrying", "success"], "status history");
  t.match(history[1]!.last_error, /^-1/);
});

t.test("pipeline - same business key with a new event id is not re-sent", async (t) => {
  const e = paidEvent();
  await stack.publish(e);
  await stack.waitStatus(e, Status.success);
  const before = (await stack.metrics.duplicatesTotal.get()).values[0]?.value ?? 0;
  await stack.publish({ ...e, id: `${e.id}-2` });
  await waitFor(async () => ((await stack.metrics.duplicatesTotal.get()).values[0]?.value ?? 0) > before, "duplicate counted");
  t.equal(stack.sim.messagesTo(e.recipient.openid).length, 1, "one message only");
});

t.test("pipeline - a lost WeChat answer is retried with the same client_msg_id: one message", async (t) => {
  const e = paidEvent();
  stack.sim.setFault({ kind: "drop", openid: e.recipient.openid, times: 1, afterAccept: true });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.success);
  t.equal(rec.attempts, 2, "the first answer was lost");
  t.equal(stack.sim.deliveriesFor(stack.sendId(e)).length, 1, "WeChat de-duplicated the retry");
});

t.test("pipeline - a job redelivered after its record says success: no second message, the missing sent fact is published once", async (t) => {
  // A sender recorded success, then died (or its publish failed) before notification.sent
  // was stored and the job acked: the record is at success, the fact is missing.
  const e = paidEvent();
  const sendId = stack.sendId(e);
  const sentAt = new Date().toISOString();
  await stack.records.create({
    send_id: sendId, event_id: e.id, event: e.event, order_id: e.order_id, ticket_id: null, channel: "wechat", language: "zh-CN",
    template_id: "TPL_PAID_ZH", openid: e.recipient.openid, status: Status.success, attempts: 2, sent_at: sentAt, wechat_msgid: "42", occurred_at: e.occurred_at, updated_at: sentAt,
  });
  const job = {
    send_id: sendId, event_id: e.id, event: e.event, channel: "wechat", order_id: e.order_id, ticket_id: null, openid: e.recipient.openid, language: "zh-CN",
    template_id: "TPL_PAID_ZH", occurred_at: e.occurred_at, payload: { touser: e.recipient.openid, template_id: "TPL_PAID_ZH", client_msg_id: sendId, data: {} },
  };
  await publishJob(stack.js, job, { msgId: `${sendId}.again.1` });
  const facts = await waitFor(async () => { const f = await sentFacts(sendId); return f.length ? f : null; }, "notification.sent re-published");
  t.same(facts.map((f) => [f.attempts, f.sent_at, f.wechat_msgid]), [[2, sentAt, "42"]], "the fact comes from the record");
  // Another redelivery within the duplicate window stores no second fact.
  await publishJob(stack.js, job, { msgId: `${sendId}.again.2` });
  await waitFor(async () => ((await stack.jsm.consumers.info(Streams.sends, Consumers.sender("wechat"))).num_pending === 0 ? true : null), "job consumed");
  await waitFor(async () => ((await stack.jsm.consumers.info(Streams.sends, Consumers.sender("wechat"))).num_ack_pending === 0 ? true : null), "job acked");
  t.equal((await sentFacts(sendId)).length, 1, "one fact");
  t.equal(stack.sim.deliveriesFor(sendId).length, 0, "WeChat was not called");
  t.equal((await stack.records.get(sendId))?.record.status, Status.success, "the record is unchanged");
});

t.test("pipeline - permanent errcode 43004: one attempt, record failed, job in the DLQ", async (t) => {
  const e = paidEvent();
  stack.sim.setFault({ kind: "errcode", errcode: 43004, openid: e.recipient.openid });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.failed);
  t.equal(rec.attempts, 1);
  t.match(rec.last_error, /43004/);
  const dlq = await waitFor(async () => {
    const si = await stack.jsm.streams.info(Streams.dlq);
    for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
      const m = await stack.jsm.streams.getMessage(Streams.dlq, { seq }).catch(() => null);
      if (m && readDlqMeta(m.header).send_id === stack.sendId(e)) return m;
    }
    return null;
  }, "DLQ entry");
  const meta = readDlqMeta(dlq.header);
  t.equal(meta.reason, "wechat_permanent");
  t.equal(meta.attempts, 1);
  t.equal(stack.sim.messagesTo(e.recipient.openid).length, 0);
  stack.sim.clearFaults({ openid: e.recipient.openid });
});

t.test("pipeline - five retryable failures: no message, the sender dead-letters the job after its fifth call", async (t) => {
  const e = paidEvent();
  stack.sim.setFault({ kind: "errcode", errcode: 45011, openid: e.recipient.openid });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.dead, 30_000);
  t.equal(rec.attempts, 5, "five WeChat calls");
  t.match(rec.last_error, /45011/);
  const dlq = await waitFor(async () => {
    const si = await stack.jsm.streams.info(Streams.dlq);
    for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
      const m = await stack.jsm.streams.getMessage(Streams.dlq, { seq }).catch(() => null);
      if (m && readDlqMeta(m.header).send_id === stack.sendId(e)) return m;
    }
    return null;
  }, "DLQ entry");
  t.match(readDlqMeta(dlq.header), { reason: "max_deliveries", attempts: 5 });
  // The server's max_deliver is a backstop far above five: it never gave up on the job.
  const si = await stack.jsm.streams.info(Streams.advisories);
  let advisories = 0;
  for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
    const m = await stack.jsm.streams.getMessage(Streams.advisories, { seq }).catch(() => null);
    if (m && decodeJson<{ stream_seq: number }>(m.data).stream_seq === readDlqMeta(dlq.header).source_seq) advisories++;
  }
  t.equal(advisories, 0, "no MAX_DELIVERIES advisory for it");
  t.notOk(await stack.jsm.streams.getMessage(Streams.sends, { seq: readDlqMeta(dlq.header).source_seq! }).catch(() => null), "the job left SENDS (terminated)");
  t.equal(stack.sim.messagesTo(e.recipient.openid).length, 0, "no message");
  stack.sim.clearFaults({ openid: e.recipient.openid });
});

t.test("pipeline - locale en-US falls back to the en template", async (t) => {
  const e = paidEvent({ recipient: { openid: "oLocaleUS", locale: "en-US" } });
  await stack.publish(e);
  await stack.waitStatus(e, Status.success);
  const m = stack.sim.deliveriesFor(stack.sendId(e))[0]!;
  t.equal(m.template_id, "TPL_PAID_EN");
  t.equal(m.data.amount2?.value, "$128.5");
});

t.test("pipeline - 1,000 events through the whole pipeline: zero lost, zero duplicated", async (t) => {
  const events = Array.from({ length: 1000 }, () => paidEvent());
  await Promise.all(events.map((e) => stack.publish(e)));
  // Every one is sent once more as a publisher retry (same id) and as a duplicate business event.
  await Promise.all(events.slice(0, 200).map((e) => stack.publish({ ...e, id: `${e.id}-dup` })));
  await waitFor(async () => {
    for (const e of events) if (stack.sim.deliveriesFor(stack.sendId(e)).length === 0) return false;
    return true;
  }, "1,000 deliveries", 60_000);
  const counts = events.map((e) => stack.sim.deliveriesFor(stack.sendId(e)).length);
  t.equal(counts.filter((c) => c === 0).length, 0, "lost");
  t.equal(counts.filter((c) => c > 1).length, 0, "duplicated");
  // The sender records success after WeChat's answer: the last records may trail the deliveries.
  const statuses = await waitFor(async () => {
    const s = await Promise.all(events.map(async (e) => (await stack.records.get(stack.sendId(e)))?.record.status));
    return s.every((x) => x === Status.success) ? s : null;
  }, "1,000 records at success", 20_000).catch(() => Promise.all(events.map(async (e) => (await stack.records.get(stack.sendId(e)))?.record.status)));
  t.equal(statuses.filter((s) => s === Status.success).length, 1000, "every record success");
});
