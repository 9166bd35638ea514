// Tencent Cloud SMS status reports on the gateway, pushed by the real SMS simulator over
// HTTP: the shared-token check, delivered and undelivered, a batch, a repeated push, an
// unknown sid, a malformed body, the route's absence without a token, and the logs.
import t from "tap";
import { Status, smsSidKey, type SendRecord } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { RecordStore } from "@notify/nats";
import { TencentSmsClient } from "@notify/sms";
import { startSmsSimulator } from "@notify/sms-simulator";
import { buildApp, loadGatewayConfig, smsReportSettings } from "@notify/gateway";
import { settings, startNats } from "./fixtures/helpers.js";
import { waitForStatus } from "../../../test/support/wait.js";

const TOKEN = "sms-callback-0d9f8e7c6b5a4";
const CREDS = { secretId: "AKIDreports", secretKey: "reports-sms-key", sdkAppId: "1400222333" };
const PHONE = (n: number) => `+86137${String(process.pid % 10000).padStart(4, "0")}${String(n).padStart(4, "0")}`;

t.test("gateway - SMS status reports", async (t) => {
  const nats = await startNats(t);
  const lines: string[] = [];
  const log = createLogger({ name: "sms-reports", level: "debug" }, { write: (s: string) => void lines.push(s) });
  const app = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings(), log, smsReports: { token: TOKEN } });
  t.teardown(() => app.close());
  await app.listen({ host: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const reportUrl = `${base}/sms/status-report`;
  const sim = await startSmsSimulator({ ...CREDS, reportDelayMs: 20 });
  t.teardown(() => sim.close());
  const client = new TencentSmsClient({ ...CREDS, signName: "TravelCo", endpoint: sim.url, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const records = new RecordStore(nats.topology.buckets.records);
  const msgids = nats.topology.buckets.msgids;
  const counts = async () => Object.fromEntries((await app.notify.gatewayMetrics.smsReports.get()).values.map((v) => [`${v.labels.report_status}/${v.labels.outcome}`, v.value]));
  const post = (body: unknown, token: string | null = TOKEN) =>
    fetch(token === null ? reportUrl : `${reportUrl}?token=${encodeURIComponent(token)}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  let n = 0;
  /** What the SMS sender does: a signed send to the simulator, SerialNo → send_id, the record at success. */
  const sendOne = async () => {
    const i = ++n;
    const sendId = `snd_smsreport_${i}`;
    const phone = PHONE(i);
    const now = new Date().toISOString();
    const rec: SendRecord = { send_id: sendId, event_id: `evt_${i}`, event: "ticket.expired", order_id: `O-${i}`, ticket_id: null, channel: "sms", language: "zh-CN", template_id: "1110", openid: null, status: Status.queued, attempts: 0, occurred_at: now, updated_at: now };
    await records.create(rec);
    const r = await client.send({ phone, templateId: "1110", params: [`O-${i}`], sessionContext: sendId });
    if (r.kind !== "success") throw new Error(`send failed: ${r.code}`);
    await msgids.put(smsSidKey(r.serialNo), sendId);
    await records.write(sendId, (c) => ({ ...c!, status: Status.success, attempts: 1, sms_serial_no: r.serialNo, sent_at: now }));
    return { sendId, sid: r.serialNo, phone };
  };
  const waitStatus = (sendId: string, status: Status) => waitForStatus(records, sendId, status);

  await t.test("without TENCENT_SMS_CALLBACK_TOKEN the route does not exist (404)", async (t) => {
    t.equal(smsReportSettings(loadGatewayConfig({ GATEWAY_API_KEYS: "k" })), undefined, "the default config has no SMS callback");
    t.same(smsReportSettings(loadGatewayConfig({ GATEWAY_API_KEYS: "k", TENCENT_SMS_CALLBACK_TOKEN: TOKEN })), { token: TOKEN });
    t.throws(() => loadGatewayConfig({ GATEWAY_API_KEYS: "k", TENCENT_SMS_CALLBACK_TOKEN: "short" }), /TENCENT_SMS_CALLBACK_TOKEN/, "a guessable token is refused at start");
    const bare = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings() });
    t.teardown(() => bare.close());
    const res = await bare.inject({ method: "POST", url: `/sms/status-report?token=${TOKEN}`, payload: [] });
    t.equal(res.statusCode, 404);
  });

  await t.test("a missing or wrong token is refused (401) before the body is read, and changes nothing", async (t) => {
    const { sendId, sid } = await sendOne();
    const report = [{ sid, report_status: "SUCCESS", errmsg: "DELIVRD", user_receive_time: "2026-11-24 08:03:04" }];
    const before = (await counts())["none/refused"] ?? 0;
    for (const token of [null, "", "x", TOKEN.slice(0, -1) + "X", `${TOKEN}extra`]) {
      const res = await post(report, token);
      t.equal(res.status, 401, `token ${JSON.stringify(token)}`);
      t.same(await res.json(), { result: 401, errmsg: "invalid token" });
    }
    const garbage = await fetch(`${reportUrl}?token=nope`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    t.equal(garbage.status, 401, "an unparsable body from a stranger is still a 401");
    t.equal((await counts())["none/refused"], before + 6);
    t.equal((await records.get(sendId))!.record.status, Status.success, "the record stays at success");
  });

  await t.test("the simulator's pushes move records to delivered / undelivered; Tencent's answer shape", async (t) => {
    sim.setReportUrl(`${reportUrl}?token=${TOKEN}`);
    t.teardown(() => sim.setReportUrl(undefined));
    const ok = await sendOne();
    sim.setFault({ kind: "report_fail", phone: PHONE(n + 1), errmsg: "MK:0001", times: 1 });
    const failed = await sendOne();
    const delivered = await waitStatus(ok.sendId, Status.delivered);
    t.match(delivered, { receipt_status: "SUCCESS:DELIVRD", receipt_at: /^\d{4}-\d\d-\d\dT/ });
    const undelivered = await waitStatus(failed.sendId, Status.undelivered);
    t.equal(undelivered.receipt_status, "FAIL:MK:0001");
    for (const id of [ok.sendId, failed.sendId]) t.equal((await records.history(id)).length, 3, "queued → success → receipt");
    const pushes = sim.pushes.filter((p) => p.reports.some((r) => r.sid === ok.sid || r.sid === failed.sid));
    t.equal(pushes.length, 2);
    for (const p of pushes) t.same([p.status, JSON.parse(p.body)], [200, { result: 0, errmsg: "OK" }]);
  });

  await t.test("a batch of reports in one push, and the same push again: each applied once", async (t) => {
    const a = await sendOne();
    const b = await sendOne();
    const batch = [
      { user_receive_time: "2026-11-24 08:03:04", nationcode: "86", mobile: a.phone.slice(3), report_status: "SUCCESS", errmsg: "DELIVRD", description: "用户短信送达成功", sid: a.sid },
      { user_receive_time: "2026-11-24 08:03:05", nationcode: "86", mobile: b.phone.slice(3), report_status: "FAIL", errmsg: "MK:0005", description: "用户短信接收失败", sid: b.sid },
    ];
    const before = await counts();
    const first = await post(batch);
    t.same([first.status, await first.json()], [200, { result: 0, errmsg: "OK" }]);
    t.match(await records.get(a.sendId), { record: { status: Status.delivered, receipt_at: "2026-11-24T00:03:04.000Z" } }, "Beijing time read as UTC+8");
    t.equal((await records.get(b.sendId))!.record.status, Status.undelivered);
    const again = await post(batch);
    t.equal(again.status, 200);
    const after = await counts();
    t.equal(after["SUCCESS/delivered"], (before["SUCCESS/delivered"] ?? 0) + 1);
    t.equal(after["FAIL/undelivered"], (before["FAIL/undelivered"] ?? 0) + 1);
    t.equal(after["SUCCESS/duplicate"], (before["SUCCESS/duplicate"] ?? 0) + 1);
    t.equal(after["FAIL/duplicate"], (before["FAIL/duplicate"] ?? 0) + 1);
    t.equal((await records.history(a.sendId)).length, 3, "moved once");
  });

  await t.test("an unknown sid is answered OK and counted, not an error", async (t) => {
    const before = (await counts())["SUCCESS/unknown_sid"] ?? 0;
    const res = await post([{ sid: "2433:000000000000000", report_status: "SUCCESS", errmsg: "DELIVRD", nationcode: "86", mobile: "13700009999" }]);
    t.same([res.status, await res.json()], [200, { result: 0, errmsg: "OK" }]);
    t.equal((await counts())["SUCCESS/unknown_sid"], before + 1);
  });

  await t.test("a malformed body is a 400 naming the field", async (t) => {
    const bad = await post([{ sid: "x", report_status: "MAYBE" }]);
    t.equal(bad.status, 400);
    const body = (await bad.json()) as { details: Array<{ path: string }> };
    t.ok(body.details.some((d) => d.path === "/0/report_status"), "names /0/report_status");
    const noSid = await post([{ report_status: "SUCCESS" }]);
    t.equal(noSid.status, 400);
    t.match(await noSid.text(), /sid/);
    t.equal((await post({ sid: "x", report_status: "SUCCESS" })).status, 400, "an object, not an array");
  });

  await t.test("logs: every callback request logged, no phone number in full, no token", async (t) => {
    const all = lines.join("");
    t.ok(all.includes("/sms/status-report"), "the requests were logged");
    t.ok(all.includes("unknown provider id"), "the unknown sid was logged");
    for (let i = 1; i <= n; i++) t.notOk(all.includes(PHONE(i).slice(3)), `number ${i} never in full`);
    t.notOk(all.includes("13700009999"), "nor the unknown report's number");
    t.notOk(all.includes(TOKEN), "the token is redacted from logged URLs");
  });
});
