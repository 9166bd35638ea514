import t, { type Test } from "tap";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger } from "@notify/log";
import { SmsCode, TencentSmsClient, type TencentSmsOptions } from "@notify/sms";
import { SmsFaultKind, startSmsSimulator, type SmsSimulator } from "@notify/sms-simulator";

const KEY = "sms-it-secret-key-42";
const PHONE = "+8613812345678";

async function rig(t: Test, simOpts: Parameters<typeof startSmsSimulator>[0] = {}) {
  const sim = await startSmsSimulator({ secretId: "AKIDit", secretKey: KEY, sdkAppId: "1400123456", ...simOpts });
  t.teardown(() => sim.close());
  const lines: string[] = [];
  const log = createLogger({ name: "sms-test", level: "trace" }, { write: (s: string) => void lines.push(s) });
  const client = (o: Partial<TencentSmsOptions> = {}) => {
    const c = new TencentSmsClient({ secretId: "AKIDit", secretKey: KEY, sdkAppId: "1400123456", signName: "TravelCo", endpoint: sim.url, timeoutMs: 1000, log, ...o });
    t.teardown(() => c.close());
    return c;
  };
  return { sim, lines, client };
}

const send = (c: TencentSmsClient, phone = PHONE) => c.send({ phone, templateId: "1110", params: ["O-1001", "128.50"], sessionContext: "snd_abc" });

t.test("sms client - a signed request is verified by the simulator and read from SendStatusSet", async (t) => {
  const { sim, client } = await rig(t);
  const r = await send(client());
  t.equal(r.kind, "success");
  if (r.kind !== "success") return;
  t.equal(sim.messages.length, 1);
  const m = sim.messages[0]!;
  t.equal(r.serialNo, m.serialNo);
  t.equal(r.fee, 1);
  t.match(r.requestId, /^[0-9a-f-]{36}$/);
  t.same({ phone: m.phone, templateId: m.templateId, params: m.params, session: m.sessionContext, sign: m.signName }, { phone: PHONE, templateId: "1110", params: ["O-1001", "128.50"], session: "snd_abc", sign: "TravelCo" });
  t.equal(sim.stats().authFailures, 0);
});

t.test("sms client - a wrong key, a tampered body and a stale timestamp are refused", async (t) => {
  const { sim, client } = await rig(t);
  const wrong = await send(client({ secretKey: "not-the-key" }));
  t.match(wrong, { kind: "retryable", code: SmsCode.signatureFailure });
  t.notMatch(wrong.kind === "success" ? "" : wrong.error, /not-the-key/);

  // Headers signed for one body, another body sent: the simulator recomputes and refuses.
  const c = client();
  const signedFor = c.body({ phone: PHONE, templateId: "1110", params: ["1"] });
  const res = await fetch(sim.url, { method: "POST", headers: c.headers(signedFor, Math.floor(Date.now() / 1000)), body: signedFor.replace('"1"', '"2"') });
  t.equal(((await res.json()) as { Response: { Error: { Code: string } } }).Response.Error.Code, SmsCode.signatureFailure);

  const stale = await send(client({ now: () => Date.now() - 10 * 60_000 }));
  t.match(stale, { kind: "retryable", code: SmsCode.signatureExpire });
  t.equal(sim.messages.length, 0, "nothing was sent");
  t.equal(sim.stats().authFailures, 3);
});

t.test("sms client - each error class from the simulator", async (t) => {
  const { sim, client } = await rig(t, { approvedTemplates: ["1110"] });
  const c = client();
  const cases: Array<[Parameters<SmsSimulator["setFault"]>[0] | null, string, string, string?]> = [
    [{ kind: SmsFaultKind.error, code: SmsCode.internalTimeout }, "retryable", SmsCode.internalTimeout],
    [{ kind: SmsFaultKind.error, code: SmsCode.requestLimitExceeded }, "retryable", SmsCode.requestLimitExceeded],
    [{ kind: SmsFaultKind.http, status: 502 }, "retryable", "http_5xx"],
    [{ kind: SmsFaultKind.timeout }, "retryable", "timeout"],
    [{ kind: SmsFaultKind.status, phone: PHONE, code: SmsCode.blacklist }, "permanent", SmsCode.blacklist],
    [{ kind: SmsFaultKind.status, phone: PHONE, code: SmsCode.signUnapproved }, "permanent", SmsCode.signUnapproved],
    [null, "permanent", SmsCode.incorrectPhone, "+86-not-a-number"],
    [{ kind: SmsFaultKind.status, phone: PHONE, code: SmsCode.deliveryFrequencyLimit }, "quota", SmsCode.deliveryFrequencyLimit],
    [{ kind: SmsFaultKind.status, phone: PHONE, code: SmsCode.phoneDailyLimit }, "quota", SmsCode.phoneDailyLimit],
  ];
  for (const [fault, kind, code, phone] of cases) {
    if (fault) sim.setFault({ ...fault, times: 1 });
    const r = await send(c, phone);
    t.match(r, { kind, code }, `${code} → ${kind}`);
  }
  const unapproved = await c.send({ phone: PHONE, templateId: "9999", params: [] });
  t.match(unapproved, { kind: "permanent", code: SmsCode.templateUnapproved });
  const long = await c.send({ phone: PHONE, templateId: "1110", params: ["1234567890123"] });
  t.match(long, { kind: "permanent", code: SmsCode.paramLength });
  t.equal(sim.messages.length, 0);
  // After the faults, the same client sends.
  t.equal((await send(c)).kind, "success");
});

t.test("sms client - phone numbers are masked in logs and errors", async (t) => {
  const { sim, client, lines } = await rig(t);
  const c = client();
  sim.setFault({ kind: SmsFaultKind.status, phone: PHONE, code: SmsCode.blacklist, message: `number ${PHONE} is on the blacklist`, times: 1 });
  const r = await send(c);
  t.equal(r.kind, "permanent");
  if (r.kind !== "success") t.match(r.error, /\+\*{9}5678/);
  t.equal((await send(c)).kind, "success");
  const all = lines.join("");
  t.ok(lines.length >= 2, "the client logged");
  t.notOk(all.includes("13812345678"), "no full number in the logs");
  t.ok(all.includes("+*********5678"), "the masked number is there");
  t.notOk(all.includes(KEY), "no secret key in the logs");
  t.notOk(JSON.stringify(r).includes("13812345678"), "no full number in the result");
});

t.test("sms simulator - status reports are pushed to the callback URL as Tencent's JSON array", async (t) => {
  const got: unknown[] = [];
  const cb = createServer((req, res) => {
    let b = "";
    req.on("data", (c: Buffer) => (b += c.toString()));
    req.on("end", () => {
      got.push(JSON.parse(b));
      res.writeHead(200, { "content-type": "application/json" }).end('{"result":0,"errmsg":"OK"}');
    });
  });
  await new Promise<void>((r) => cb.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => cb.close(() => r())));
  const { sim, client } = await rig(t, { reportUrl: `http://127.0.0.1:${(cb.address() as AddressInfo).port}/cb?token=x`, reportDelayMs: 10 });
  sim.setFault({ kind: SmsFaultKind.reportFail, phone: "+8613900000001", errmsg: "MK:0005", times: 1 });
  const ok = await send(client());
  const failed = await send(client(), "+8613900000001");
  for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  const reports = (got as Array<Array<Record<string, string>>>).flat();
  t.equal(reports.length, 2);
  const bySid = new Map(reports.map((x) => [x.sid, x]));
  t.match(bySid.get(ok.kind === "success" ? ok.serialNo : ""), { report_status: "SUCCESS", errmsg: "DELIVRD", nationcode: "86", mobile: "13812345678" });
  t.match(bySid.get(failed.kind === "success" ? failed.serialNo : ""), { report_status: "FAIL", errmsg: "MK:0005" });
  t.equal(sim.pushes.every((p) => p.status === 200), true);
  const dup = await sim.pushReport(ok.kind === "success" ? ok.serialNo : "", { times: 2 });
  t.equal(dup.length, 2, "a report can be pushed twice (duplicates happen)");
});
