// Delivery closes the loop end to end: an event posted to the real gateway → dispatcher →
// sender → the WeChat simulator, which pushes a signed TEMPLATESENDJOBFINISH receipt back
// to the same gateway's /wechat/callback over HTTP. The record ends `delivered` with the
// history queued → success → delivered, and notification.delivered is published exactly
// once — counted on a real NATS subscription, through WeChat's repeated pushes.
import t from "tap";
import type { Subscription } from "@nats-io/transport-node";
import { Status, Subjects, decodeJson, type DeliveryFact } from "@notify/contracts";
import { buildApp } from "@notify/gateway";
import { ReceiptStatus } from "@notify/wechat-simulator";
import { Stack } from "../support/stack.js";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";

const API_KEY = "receipt-pipeline-key-0123456789";
const TOKEN = "pipelineToken7";
const AES_KEY = "Zyxwvutsrqponmlkjihgfedcba9876543210ABCDEFG";

t.test("pipeline - event → message → receipt → delivered, notification.delivered once", async (t) => {
  const stack = await Stack.start({ senders: 1 });
  t.teardown(() => stack.close());
  await stack.putTemplate(paidTemplate());
  const app = buildApp({
    nc: stack.nc,
    topology: stack.topo,
    settings: { apiKeys: [API_KEY], auth: "on", rateLimitPerMinute: 100_000 },
    receipts: { token: TOKEN, appId: stack.sim.appId, encodingAesKey: AES_KEY },
  });
  t.teardown(() => app.close());
  await app.listen({ host: "127.0.0.1", port: 0 });
  const gateway = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;

  // Every fact published on the two subjects, as a downstream consumer would see them.
  const seen: Array<{ subject: string; fact: DeliveryFact }> = [];
  const subs: Subscription[] = [Subjects.delivered, Subjects.undelivered].map((subject) =>
    stack.nc.subscribe(subject, { callback: (_err, m) => { seen.push({ subject: m.subject, fact: decodeJson<DeliveryFact>(m.data) }); } }),
  );
  t.teardown(() => subs.forEach((s) => s.unsubscribe()));
  await stack.nc.flush();

  const cases = [
    { mode: "plain", outcome: ReceiptStatus.success, status: Status.delivered, subject: Subjects.delivered },
    { mode: "aes", outcome: ReceiptStatus.success, status: Status.delivered, subject: Subjects.delivered },
    { mode: "aes", outcome: ReceiptStatus.userBlock, status: Status.blocked, subject: Subjects.undelivered },
  ] as const;
  for (const c of cases) {
    await t.test(`${c.mode} mode, WeChat reports ${c.outcome}`, async (t) => {
      stack.sim.setReceiptTarget({ url: `${gateway}/wechat/callback`, token: TOKEN, ...(c.mode === "aes" ? { encodingAesKey: AES_KEY } : {}), delayMs: 50 });
      const e = paidEvent();
      stack.sim.setReceiptOutcome(e.recipient.openid, c.outcome);
      const posted = await fetch(`${gateway}/notifications/events`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" }, body: JSON.stringify(e) });
      t.equal(posted.status, 202, "the gateway takes the event");
      const sendId = stack.sendId(e);
      t.same(((await posted.json()) as { sends: { send_id: string }[] }).sends.map((s) => s.send_id), [sendId], "and names the send followed here");

      const rec = await stack.waitStatus(e, c.status);
      t.equal(rec.receipt_status, c.outcome);
      const delivered = stack.sim.deliveriesFor(sendId);
      t.equal(delivered.length, 1, "the simulator accepted one message");
      const msgid = String(delivered[0]!.msgid);
      t.equal(String(rec.wechat_msgid), msgid, "the record carries WeChat's msgid");
      t.same((await stack.records.history(sendId)).map((r) => r.status), [Status.queued, Status.success, c.status], `history queued → success → ${c.status}`);

      // WeChat pushes again when it doubts our answer: the same FromUserName + CreateTime, twice more.
      const push = await waitFor(() => stack.sim.receipts().find((p) => p.msgid === msgid && p.answers.length > 0), "the simulator's push to be answered");
      t.same(push.answers, [200], "answered success at the first try");
      const again = await Promise.all([1, 2].map(() => stack.sim.pushReceipt(msgid, e.recipient.openid, { createTime: push.createTime })));
      t.same(again.map((p) => p.answers), [[200], [200]], "the repeats are answered too");
      await stack.nc.flush();
      // Let anything a repeat might have published arrive before counting.
      await new Promise((r) => setTimeout(r, 300));
      await stack.nc.flush();
      const mine = seen.filter((s) => s.fact.send_id === sendId);
      t.same(mine.map((s) => [s.subject, s.fact.status, String(s.fact.wechat_msgid)]), [[c.subject, c.status, msgid]], `${c.subject} published exactly once`);
      t.same((await stack.records.history(sendId)).map((r) => r.status), [Status.queued, Status.success, c.status], "the repeats changed nothing");
    });
  }
  const outcomes = Object.fromEntries((await app.notify.gatewayMetrics.receipts.get()).values.map((v) => [v.labels.outcome, v.value]));
  t.match(outcomes, { delivered: 2, blocked: 1, duplicate: 6 }, "receipts counted by outcome");
});
