import t from "tap";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Consumers, Status, Streams, Subjects, decodeJson, encodeJson, sendIdFor, templateKey, type DeliveryFact, type EventEnvelope, type SendRecord, type TemplateInput } from "@notify/contracts";
import { buildApp } from "@notify/gateway";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { NatsServer } from "@notify/nats-server";
import { RecordStore, ensureTopology } from "@notify/nats";
import { startDispatcher } from "@notify/dispatcher";
import { createSmsChannel, createWeChatChannel, smsMetrics, startSender } from "@notify/sender";
import { normalizeTemplate } from "@notify/templates";
import { ReceiptStatus, startSimulator } from "@notify/wechat-simulator";
import { startSmsSimulator } from "@notify/sms-simulator";
import { paidEvent } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";

// One stack for the file: nats-server, both simulators, a dispatcher on wechat+sms, one
// sender per channel, and the gateway taking WeChat receipts and SMS status reports, which
// the simulators push over real HTTP.
const server = await NatsServer.start();
t.teardown(() => server.stop());
const nc = await connect({ servers: server.url, noAsyncTraces: true });
t.teardown(() => nc.close());
const topo = await ensureTopology(nc);
const js = jetstream(nc);
const records = new RecordStore(topo.buckets.records);
const wechat = await startSimulator();
t.teardown(() => wechat.close());
const sms = await startSmsSimulator({ secretId: "AKIDpipeline", secretKey: "pipeline-sms-key", sdkAppId: "1400999999" });
t.teardown(() => sms.close());
const lines: string[] = [];
const log = createLogger({ name: "sms-pipeline", level: "debug" }, { write: (s: string) => void lines.push(s) });
const metrics = createMetrics("test");
const senderOpts = { nc, log, metrics, concurrency: 8, retry: { baseMs: 50, maxMs: 500, jitter: 0 }, quotaParkMs: 60_000 };

const dispatcher = await startDispatcher({ nc, log, metrics, channels: ["wechat", "sms"], concurrency: 16 });
t.teardown(() => dispatcher.close());
const wechatSender = await startSender({
  ...senderOpts,
  topology: { channels: ["wechat"] },
  createChannel: ({ buckets }) => createWeChatChannel({ apiBase: wechat.url, appId: wechat.appId, appSecret: "local-simulator-secret", timeoutMs: 1000, tokens: buckets.tokens, msgids: buckets.msgids, log, metrics }),
});
t.teardown(() => wechatSender.close());
const smsSender = await startSender({
  ...senderOpts,
  topology: { channels: ["sms"] },
  createChannel: ({ buckets }) =>
    createSmsChannel({ endpoint: sms.url, secretId: "AKIDpipeline", secretKey: "pipeline-sms-key", sdkAppId: "1400999999", signName: "TravelCo", region: "ap-guangzhou", timeoutMs: 1000, log, msgids: buckets.msgids, onResult: smsMetrics(metrics) }),
});
t.teardown(() => smsSender.close());

const WECHAT_TOKEN = "pipelineReceipts";
const SMS_TOKEN = "sms-report-token-7f3a9c2e51";
const gateway = buildApp({ nc, topology: topo, settings: { apiKeys: ["pipeline-key-0123456789"], auth: "on", rateLimitPerMinute: 1_000_000 }, log, metrics, receipts: { token: WECHAT_TOKEN, appId: wechat.appId }, smsReports: { token: SMS_TOKEN } });
t.teardown(() => gateway.close());
await gateway.listen({ host: "127.0.0.1", port: 0 });
const gatewayUrl = `http://127.0.0.1:${(gateway.server.address() as { port: number }).port}`;
wechat.setReceiptTarget({ url: `${gatewayUrl}/wechat/callback`, token: WECHAT_TOKEN, delayMs: 20 });
sms.setReportUrl(`${gatewayUrl}/sms/status-report?token=${SMS_TOKEN}`);

async function putTemplate(input: TemplateInput) {
  const tpl = normalizeTemplate(input);
  await topo.buckets.templates.put(templateKey(tpl.event, tpl.channel, tpl.language), encodeJson(tpl));
  await waitFor(() => dispatcher.templates.get(tpl.event, tpl.channel, tpl.language)?.template.updated_at === tpl.updated_at, "template cached");
}
const sid = (e: EventEnvelope, channel: string) => sendIdFor({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel });
const record = async (id: string) => (await records.get(id))?.record;
const waitRecord = (id: string, ok: (r: SendRecord) => boolean, what: string) => waitFor(async () => {
  const r = await record(id);
  return r && ok(r) ? r : null;
}, what);
const sent = (r: SendRecord) => r.status === Status.success || r.status === Status.delivered;
/** The notification.delivered / .undelivered facts of one send. */
async function deliveryFacts(sendId: string): Promise<Array<{ subject: string; fact: DeliveryFact }>> {
  const out: Array<{ subject: string; fact: DeliveryFact }> = [];
  const si = await topo.jsm.streams.info(Streams.notifications);
  for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
    const m = await topo.jsm.streams.getMessage(Streams.notifications, { seq }).catch(() => null);
    if (m && (m.subject === Subjects.delivered || m.subject === Subjects.undelivered)) {
      const f = decodeJson<DeliveryFact>(m.data);
      if (f.send_id === sendId) out.push({ subject: m.subject, fact: f });
    }
  }
  return out;
}
const publish = (e: EventEnvelope, msgID = e.id) => js.publish(Subjects.event(e.event), encodeJson(e), { msgID });
let phones = 0;
const newPhone = () => `+86139${String(process.pid % 10000).padStart(4, "0")}${String(++phones).padStart(4, "0")}`;

// ticket.refunded: WeChat with an SMS fallback. ticket.expired: SMS only.
await putTemplate({ event: "ticket.refunded", channel: "wechat", template_id: "TPL_REFUND", data: { thing1: "{{order_id}}" }, fallback: "sms" });
await putTemplate({ event: "ticket.refunded", channel: "sms", template_id: "2001", params: ["{{order_id}}", "{{amount}}"] });
await putTemplate({ event: "ticket.expired", channel: "sms", template_id: "2002", params: ["{{order_id}}"] });

t.test("sms pipeline - an SMS template is sent through sender-sms, signed, with the send_id as SessionContext", async (t) => {
  const phone = newPhone();
  const e = paidEvent({ event: "ticket.expired", order_id: `O-EXP-${phones}`, recipient: { openid: "oSmsOnly", phone } });
  await publish(e);
  const r = await waitRecord(sid(e, "sms"), sent, "sms success");
  const [m] = sms.messagesTo(phone);
  t.ok(m, "the simulator received it (its signature check passed)");
  t.same(m?.params, [e.order_id]);
  t.equal(m?.sessionContext, sid(e, "sms"));
  t.equal(r.sms_serial_no, m?.serialNo, "the record keeps Tencent's SerialNo");
  t.equal(r.phone, `+*********${phone.slice(-4)}`, "the record holds the number masked");
  t.equal(sms.stats().authFailures, 0);
  t.equal((await record(sid(e, "wechat")))?.reason, "no_template", "WeChat has no template for this event");
});

t.test("sms pipeline - Tencent's status report (pushed by the simulator over HTTP) moves the record to delivered, once", async (t) => {
  const phone = newPhone();
  const e = paidEvent({ event: "ticket.expired", order_id: `O-EXP-DLV-${phones}`, recipient: { openid: "oSmsReport", phone } });
  await publish(e);
  const r = await waitRecord(sid(e, "sms"), (r) => r.status === Status.delivered, "delivered by the status report");
  const [m] = sms.messagesTo(phone);
  t.match(r, { receipt_status: "SUCCESS:DELIVRD", sms_serial_no: m?.serialNo });
  t.match(r.receipt_at, /^\d{4}-\d\d-\d\dT/);
  t.same((await records.history(sid(e, "sms"))).map((x) => x.status), [Status.queued, Status.success, Status.delivered], "history queued → success → delivered");
  const push = await waitFor(() => sms.pushes.find((p) => p.reports.some((x) => x.sid === m?.serialNo)), "the simulator's push");
  t.equal(push.status, 200);
  t.same(JSON.parse(push.body), { result: 0, errmsg: "OK" }, "Tencent's expected answer");
  // Tencent pushes the same report again: counted as a duplicate, nothing moves twice.
  const again = await sms.pushReport(m!.serialNo, { times: 2 });
  t.same(again.map((p) => p.status), [200, 200]);
  const facts = await waitFor(async () => ((await deliveryFacts(sid(e, "sms"))).length ? deliveryFacts(sid(e, "sms")) : null), "the delivery fact");
  await sleep(300);
  t.same((await deliveryFacts(sid(e, "sms"))).map((f) => [f.subject, f.fact.status, f.fact.sms_serial_no]), [[Subjects.delivered, Status.delivered, m?.serialNo]], "one notification.delivered");
  t.equal(facts.length, 1);
  t.equal((await records.history(sid(e, "sms"))).length, 3, "no further revision");
});

t.test("sms pipeline - a FAIL report for one number moves that record to undelivered", async (t) => {
  const phone = newPhone();
  sms.setFault({ kind: "report_fail", phone, errmsg: "MK:0005", times: 1 });
  const e = paidEvent({ event: "ticket.expired", order_id: `O-EXP-UND-${phones}`, recipient: { openid: "oSmsFail", phone } });
  await publish(e);
  const r = await waitRecord(sid(e, "sms"), (r) => r.status === Status.undelivered, "undelivered by the status report");
  t.equal(r.receipt_status, "FAIL:MK:0005");
  const f = await waitFor(async () => (await deliveryFacts(sid(e, "sms")))[0], "the undelivered fact");
  t.match(f, { subject: Subjects.undelivered, fact: { status: Status.undelivered, channel: "sms" } });
});

t.test("sms pipeline - an SMS template and no recipient.phone is recorded skipped (no_phone)", async (t) => {
  const e = paidEvent({ event: "ticket.expired", order_id: `O-EXP-NOPHONE-${process.pid}` });
  await publish(e);
  const r = await waitRecord(sid(e, "sms"), () => true, "sms record");
  t.match(r, { status: "skipped", reason: "no_phone" });
});

t.test("sms pipeline - 43004 on WeChat sends one SMS, records linked both ways; a redelivered event sends no second one", async (t) => {
  const phone = newPhone();
  const openid = `oNotFollowing${phones}`;
  wechat.setFault({ kind: "errcode", errcode: 43004, openid });
  const e = paidEvent({ event: "ticket.refunded", order_id: `O-REF-${phones}`, recipient: { openid, phone }, data: { amount: 99 } });
  await publish(e);
  const wx = await waitRecord(sid(e, "wechat"), (r) => r.status === "failed", "wechat failed");
  t.equal(wx.fallback_send_id, sid(e, "sms"), "the WeChat record points at the SMS send");
  const s = await waitRecord(sid(e, "sms"), sent, "sms success");
  t.equal(s.fallback_of, sid(e, "wechat"), "the SMS record points back");
  t.same(sms.messagesTo(phone).map((m) => m.params), [[e.order_id, "99"]]);

  // The same event again, past the duplicate window (a new msg id), and the same business key from a new event.
  await publish(e, `${e.id}-redelivered`);
  await publish({ ...e, id: `${e.id}-again` });
  await sleep(1500);
  t.equal(sms.messagesTo(phone).length, 1, "still one SMS");
  t.equal(wechat.messagesTo(openid).length, 0);
});

t.test("sms pipeline - WeChat success (and its delivered receipt) sends no SMS; the sms channel does not send a fallback-only template directly", async (t) => {
  const phone = newPhone();
  const e = paidEvent({ event: "ticket.refunded", order_id: `O-REF-OK-${phones}`, recipient: { openid: `oFollower${phones}`, phone }, data: { amount: 5 } });
  await publish(e);
  await waitRecord(sid(e, "wechat"), (r) => r.status === Status.delivered, "wechat delivered (receipt success)");
  await sleep(1000);
  t.equal(sms.messagesTo(phone).length, 0, "no SMS");
  t.equal(await record(sid(e, "sms")), undefined, "no SMS record at all");
});

t.test("sms pipeline - a failed:user block receipt sends one SMS, linked both ways; repeated receipts and a redelivered event send no second one", async (t) => {
  const phone = newPhone();
  const openid = `oBlocker${phones}`;
  wechat.setReceiptOutcome(openid, ReceiptStatus.userBlock);
  const e = paidEvent({ event: "ticket.refunded", order_id: `O-REF-BLK-${phones}`, recipient: { openid, phone }, data: { amount: 42 } });
  await publish(e);
  const wx = await waitRecord(sid(e, "wechat"), (r) => r.status === Status.blocked, "wechat blocked by the receipt");
  t.equal(wx.receipt_status, ReceiptStatus.userBlock);
  t.equal(wx.fallback_send_id, sid(e, "sms"), "the WeChat record points at the SMS send");
  t.equal(wechat.messagesTo(openid).length, 1, "WeChat accepted the message once");
  const s = await waitRecord(sid(e, "sms"), sent, "sms sent");
  t.equal(s.fallback_of, sid(e, "wechat"), "the SMS record points back");
  t.not(s.send_id, wx.send_id, "its own send_id");
  t.same(sms.messagesTo(phone).map((m) => m.params), [[e.order_id, "42"]]);
  const [fact] = await deliveryFacts(sid(e, "wechat"));
  t.match(fact, { subject: Subjects.undelivered, fact: { status: Status.blocked, receipt_status: ReceiptStatus.userBlock } });

  // WeChat pushes the receipt again (its retry: same CreateTime; and a new push), and the event comes back.
  const [push] = wechat.receipts().filter((p) => p.msgid === wx.wechat_msgid);
  t.ok(push, "the simulator pushed the receipt");
  await wechat.pushReceipt(wx.wechat_msgid!, openid, { createTime: push!.createTime });
  await wechat.pushReceipt(wx.wechat_msgid!, openid, { createTime: push!.createTime + 1 });
  await publish(e, `${e.id}-redelivered`);
  await sleep(1500);
  t.equal(sms.messagesTo(phone).length, 1, "still one SMS");
  t.equal(wechat.messagesTo(openid).length, 1, "and one WeChat message");
  t.same((await records.history(sid(e, "sms"))).filter((r) => r.status === Status.queued).length, 1, "one queued SMS record revision");
});

t.test("sms pipeline - each SMS error class ends where the WeChat rules say", async (t) => {
  const permanentPhone = newPhone();
  sms.setFault({ kind: "status", phone: permanentPhone, code: "FailedOperation.PhoneNumberInBlacklist" });
  const p = paidEvent({ event: "ticket.expired", order_id: `O-EXP-BL-${phones}`, recipient: { openid: "oBl", phone: permanentPhone } });
  await publish(p);
  t.match(await waitRecord(sid(p, "sms"), (r) => r.status === "failed", "failed"), { reason: "sms_permanent", last_error: /PhoneNumberInBlacklist/ });

  const retryPhone = newPhone();
  sms.setFault({ kind: "error", phone: retryPhone, code: "InternalError.Timeout", times: 2 });
  const r = paidEvent({ event: "ticket.expired", order_id: `O-EXP-RT-${phones}`, recipient: { openid: "oRt", phone: retryPhone } });
  await publish(r);
  t.match(await waitRecord(sid(r, "sms"), (x) => x.status === "success", "success after retries"), { attempts: 3 });

  const quotaPhone = newPhone();
  sms.setFault({ kind: "status", phone: quotaPhone, code: "LimitExceeded.DeliveryFrequencyLimit" });
  const q = paidEvent({ event: "ticket.expired", order_id: `O-EXP-Q-${phones}`, recipient: { openid: "oQ", phone: quotaPhone } });
  await publish(q);
  t.match(await waitRecord(sid(q, "sms"), (x) => x.status === "retrying", "parked"), { last_error: /DeliveryFrequencyLimit/ });
});

t.test("sms pipeline - sms metrics: sends by result and code, status reports by status", async (t) => {
  const sends = (await metrics.smsSendsTotal.get()).values.map((v) => `${v.labels.result}/${v.labels.code}`);
  for (const want of ["success/Ok", "permanent/FailedOperation.PhoneNumberInBlacklist", "retryable/InternalError.Timeout", "quota/LimitExceeded.DeliveryFrequencyLimit"]) t.ok(sends.includes(want), `sms_sends_total{${want}}`);
  const reports = Object.fromEntries((await gateway.notify.gatewayMetrics.smsReports.get()).values.map((v) => [`${v.labels.report_status}/${v.labels.outcome}`, v.value]));
  t.ok((reports["SUCCESS/delivered"] ?? 0) >= 1, "gateway_sms_reports_total{SUCCESS,delivered}");
  t.ok((reports["FAIL/undelivered"] ?? 0) >= 1, "gateway_sms_reports_total{FAIL,undelivered}");
  t.ok((reports["SUCCESS/duplicate"] ?? 0) >= 2, "the repeated pushes counted as duplicates");
  const text = await metrics.registry.metrics();
  t.match(text, /sms_call_duration_seconds_bucket\{/);
});

t.test("sms pipeline - no full phone number in any log line", async (t) => {
  const all = lines.join("");
  t.ok(all.length > 0);
  t.ok(all.includes("/sms/status-report"), "the gateway's callback requests were logged");
  t.notOk(all.includes(SMS_TOKEN), "the callback token is redacted from logged URLs");
  for (let i = 1; i <= phones; i++) {
    const full = `139${String(process.pid % 10000).padStart(4, "0")}${String(i).padStart(4, "0")}`;
    t.notOk(all.includes(full), `number ${i} never logged in full`);
  }
  t.notOk(all.includes("pipeline-sms-key"), "no secret key");
});

t.test("sms pipeline - the sender-sms consumer exists only because an SMS sender asked for it", async (t) => {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const c of jsm.consumers.list(Streams.sends)) names.push(c.name);
  t.ok(names.includes(Consumers.sender("sms")));
});
