// WeChat delivery receipts on the gateway's server URL, pushed by the real simulator over
// HTTP: each status in plain and safe mode, a forged signature, a repeated push, an
// unknown msgid, and the URL verification.
import t from "tap";
import { createHash } from "node:crypto";
import { Status, Streams, Subjects, decodeJson, msgidKey, type DeliveryFact, type SendRecord } from "@notify/contracts";
import { RecordStore } from "@notify/nats";
import { WeChatClient } from "@notify/wechat";
import { ReceiptStatus, startSimulator } from "@notify/wechat-simulator";
import { buildApp } from "@notify/gateway";
import { settings, startNats } from "./fixtures/helpers.js";
import { waitForStatus } from "../../../test/support/wait.js";

const TOKEN = "receiptToken42";
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP = { appId: "wx-receipts", appSecret: "receipts-secret" };

t.test("gateway - WeChat delivery receipts", async (t) => {
  const nats = await startNats(t);
  const app = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings(), receipts: { token: TOKEN, appId: APP.appId, encodingAesKey: AES_KEY } });
  t.teardown(() => app.close());
  await app.listen({ host: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const callback = `${base}/wechat/callback`;
  const sim = await startSimulator(APP);
  t.teardown(() => sim.close());
  const client = new WeChatClient({ ...APP, apiBase: sim.url, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const records = new RecordStore(nats.topology.buckets.records);
  const msgids = nats.topology.buckets.msgids;
  const receipts = async () => Object.fromEntries((await app.notify.gatewayMetrics.receipts.get()).values.map((v) => [v.labels.outcome, v.value]));

  let n = 0;
  /** What the sender does: a real send to the simulator, the record at success, msgid → send_id. */
  const sendOne = async (openid: string) => {
    const sendId = `snd_receipt_${++n}`;
    const now = new Date().toISOString();
    const rec: SendRecord = { send_id: sendId, event_id: `evt_${n}`, event: "order.paid", order_id: `O-${n}`, ticket_id: null, channel: "wechat", language: "zh-CN", template_id: "TPL", openid, status: Status.queued, attempts: 0, occurred_at: now, updated_at: now };
    await records.create(rec);
    const r = await client.sendTemplate({ touser: openid, template_id: "TPL", client_msg_id: sendId, data: { thing1: { value: "West Lake" } } });
    if (r.kind !== "success") throw new Error(`send failed: ${r.code}`);
    await msgids.put(msgidKey(r.msgid), sendId);
    await records.write(sendId, (c) => ({ ...c!, status: Status.success, attempts: 1, wechat_msgid: r.msgid, sent_at: now }));
    return { sendId, msgid: r.msgid };
  };
  const waitStatus = (sendId: string, status: Status) => waitForStatus(records, sendId, status);
  /** The simulator's automatic push of msgid, once answered. */
  const answeredPush = async (msgid: string) => {
    for (let i = 0; i < 200; i++) {
      const p = sim.receipts().find((x) => x.msgid === msgid);
      if (p && p.answers.length) return p;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no answered push for ${msgid}`);
  };
  const facts = async (sendId: string) => {
    const out: Array<{ subject: string; fact: DeliveryFact }> = [];
    const si = await nats.topology.jsm.streams.info(Streams.notifications);
    for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
      const m = await nats.topology.jsm.streams.getMessage(Streams.notifications, { seq }).catch(() => null);
      if (m && (m.subject === Subjects.delivered || m.subject === Subjects.undelivered)) {
        const f = decodeJson<DeliveryFact>(m.data);
        if (f.send_id === sendId) out.push({ subject: m.subject, fact: f });
      }
    }
    return out;
  };

  await t.test("GET verification: echostr back only with the right signature", async (t) => {
    const timestamp = "1700000000";
    const nonce = "12345";
    const signature = createHash("sha1").update([TOKEN, timestamp, nonce].sort().join("")).digest("hex");
    const ok = await fetch(`${callback}?${new URLSearchParams({ signature, timestamp, nonce, echostr: "echo-4711" })}`);
    t.equal(ok.status, 200);
    t.equal(await ok.text(), "echo-4711");
    const bad = await fetch(`${callback}?${new URLSearchParams({ signature: "0".repeat(40), timestamp, nonce, echostr: "echo-4711" })}`);
    t.equal(bad.status, 401);
    t.not(await bad.text(), "echo-4711", "the echostr is not echoed");
    const none = await fetch(callback);
    t.equal(none.status, 401, "no signature at all");
  });

  const cases: Array<[ReceiptStatus, Status, string]> = [
    [ReceiptStatus.success, Status.delivered, Subjects.delivered],
    [ReceiptStatus.userBlock, Status.blocked, Subjects.undelivered],
    [ReceiptStatus.systemFailed, Status.undelivered, Subjects.undelivered],
  ];
  for (const mode of ["plain", "aes"] as const) {
    await t.test(`${mode} mode: each status moves the record and publishes one fact`, async (t) => {
      sim.setReceiptTarget({ url: callback, token: TOKEN, ...(mode === "aes" ? { encodingAesKey: AES_KEY } : {}), delayMs: 20 });
      for (const [wechatStatus, status, subject] of cases) {
        const openid = `oReceipt-${mode}-${status}`;
        sim.setReceiptOutcome(openid, wechatStatus);
        const { sendId, msgid } = await sendOne(openid);
        const rec = await waitStatus(sendId, status);
        t.equal(rec.receipt_status, wechatStatus, `${wechatStatus} → ${status}`);
        t.match(rec.receipt_at, /^\d{4}-\d\d-\d\dT/);
        const push = await answeredPush(msgid);
        t.equal(push.mode, mode);
        t.same(push.answers, [200], "answered at the first try");
        t.equal(push.body, "success");
        const history = (await records.history(sendId)).map((r) => r.status);
        t.same(history, [Status.queued, Status.success, status], "history queued → success → receipt");
        let f: Awaited<ReturnType<typeof facts>> = [];
        for (let i = 0; i < 40 && f.length === 0; i++) { f = await facts(sendId); if (!f.length) await new Promise((r) => setTimeout(r, 50)); }
        t.same(f.map((x) => [x.subject, x.fact.status, x.fact.wechat_msgid]), [[subject, status, msgid]], `one ${subject} fact`);
      }
    });
  }

  await t.test("a forged signature is refused and changes nothing; in both modes", async (t) => {
    for (const mode of ["plain", "aes"] as const) {
      sim.setReceiptTarget({ url: callback, token: TOKEN, ...(mode === "aes" ? { encodingAesKey: AES_KEY } : {}), delayMs: 60_000 });
      const openid = `oForged-${mode}`;
      const { sendId, msgid } = await sendOne(openid);
      const before = (await receipts()).refused ?? 0;
      const p = await sim.pushReceipt(msgid, openid, { forge: true, tries: 1 });
      t.same(p.answers, [401], `${mode}: 401`);
      t.equal((await records.get(sendId))!.record.status, Status.success, "the record stays at success");
      t.equal((await receipts()).refused, before + 1, "counted as refused");
    }
    const wrongKey = await fetch(`${callback}?encrypt_type=aes&timestamp=1&nonce=2&msg_signature=${"a".repeat(40)}`, { method: "POST", headers: { "content-type": "text/xml" }, body: "<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>" });
    t.equal(wrongKey.status, 401, "safe mode with a bad msg_signature");
    const garbage = await fetch(`${callback}?signature=${"b".repeat(40)}&timestamp=1&nonce=2`, { method: "POST", headers: { "content-type": "text/xml" }, body: "<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><xml>&a;</xml>" });
    t.equal(garbage.status, 401, "unsigned XML (with an external entity) is refused before it is parsed");
  });

  await t.test("a repeated push (same FromUserName + CreateTime) is counted once", async (t) => {
    sim.setReceiptTarget({ url: callback, token: TOKEN, encodingAesKey: AES_KEY, delayMs: 20 });
    const openid = "oDuplicate";
    const { sendId, msgid } = await sendOne(openid);
    await waitStatus(sendId, Status.delivered);
    const first = await answeredPush(msgid);
    const before = await receipts();
    const again = await sim.pushReceipt(msgid, openid, { createTime: first.createTime });
    const third = await sim.pushReceipt(msgid, openid, { createTime: first.createTime });
    t.same([again.answers, third.answers], [[200], [200]], "WeChat is told success each time (no more retries)");
    const after = await receipts();
    t.equal(after.duplicate, (before.duplicate ?? 0) + 2, "both counted as duplicates");
    t.equal(after.delivered, before.delivered, "delivered counted once");
    t.same((await records.history(sendId)).map((r) => r.status), [Status.queued, Status.success, Status.delivered], "one transition");
    t.equal((await facts(sendId)).length, 1, "notification.delivered published once");
  });

  await t.test("an unknown msgid is counted and answered, not an error", async (t) => {
    sim.setReceiptTarget({ url: callback, token: TOKEN, delayMs: 60_000 });
    const before = (await receipts()).unknown_msgid ?? 0;
    const p = await sim.pushReceipt("9999999999999999999", "oStranger", { tries: 1 });
    t.same(p.answers, [200]);
    t.equal(p.body, "success");
    t.equal((await receipts()).unknown_msgid, before + 1);
  });

  await t.test("replay window: a correctly signed push with an old or future timestamp is refused, a fresh one applied", async (t) => {
    sim.setReceiptTarget({ url: callback, token: TOKEN, delayMs: 60_000 });
    const openid = "oReplay";
    const { sendId, msgid } = await sendOne(openid);
    const nonce = "4242";
    const xml = `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName><CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>${msgid}</MsgID><Status><![CDATA[success]]></Status></xml>`;
    const postAt = (ts: number) => {
      const timestamp = String(ts);
      const signature = createHash("sha1").update([TOKEN, timestamp, nonce].sort().join("")).digest("hex");
      return fetch(`${callback}?${new URLSearchParams({ signature, timestamp, nonce })}`, { method: "POST", headers: { "content-type": "text/xml" }, body: xml });
    };
    const nowSec = Math.floor(Date.now() / 1000);
    const before = (await receipts()).too_old ?? 0;
    const old = await postAt(nowSec - 301);
    t.equal(old.status, 401, "signed 301 s ago: outside the default 300 s window");
    t.match(await old.text(), /replay window/);
    t.equal((await postAt(nowSec + 400)).status, 401, "signed in the future beyond the window");
    t.equal((await receipts()).too_old, before + 2, "both counted too_old");
    t.equal((await records.get(sendId))!.record.status, Status.success, "nothing applied");
    const ok = await postAt(nowSec - 60);
    t.equal(ok.status, 200, "a minute old: inside the window");
    await waitStatus(sendId, Status.delivered);
  });

  await t.test("other pushes are acknowledged; a receipt without MsgID is a 400", async (t) => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = "777";
    const signature = createHash("sha1").update([TOKEN, timestamp, nonce].sort().join("")).digest("hex");
    const post = (body: string) => fetch(`${callback}?${new URLSearchParams({ signature, timestamp, nonce })}`, { method: "POST", headers: { "content-type": "text/xml" }, body });
    const follow = await post("<xml><FromUserName><![CDATA[oX]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>");
    t.equal(follow.status, 200);
    t.equal(await follow.text(), "success");
    const noId = await post("<xml><FromUserName><![CDATA[oX]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><Status><![CDATA[success]]></Status></xml>");
    t.equal(noId.status, 400);
    const notXml = await post("{\"json\": true}");
    t.equal(notXml.status, 400);
  });
});

t.test("gateway - the receipt replay window is configurable (WECHAT_CALLBACK_MAX_AGE_SEC) and follows an injected clock", async (t) => {
  const { loadGatewayConfig, receiptSettings } = await import("@notify/gateway");
  const cfg = loadGatewayConfig({ GATEWAY_AUTH: "off", WECHAT_CALLBACK_TOKEN: TOKEN, WECHAT_CALLBACK_MAX_AGE_SEC: "30" });
  t.match(receiptSettings(cfg), { token: TOKEN, maxAgeSec: 30 });
  t.equal(receiptSettings(loadGatewayConfig({ GATEWAY_AUTH: "off", WECHAT_CALLBACK_TOKEN: TOKEN }))!.maxAgeSec, 300, "default 5 minutes");
  t.throws(() => loadGatewayConfig({ GATEWAY_AUTH: "off", WECHAT_CALLBACK_MAX_AGE_SEC: "5" }), /WECHAT_CALLBACK_MAX_AGE_SEC/, "below 10 s is refused, naming the variable");
  const nats = await startNats(t);
  let nowMs = Date.UTC(2026, 0, 1, 0, 0, 0);
  const app = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings(), receipts: { token: TOKEN, appId: APP.appId, maxAgeSec: 30, now: () => nowMs } });
  t.teardown(() => app.close());
  const ts = String(nowMs / 1000);
  const nonce = "99";
  const signature = createHash("sha1").update([TOKEN, ts, nonce].sort().join("")).digest("hex");
  const post = () => app.inject({ method: "POST", url: `/wechat/callback?${new URLSearchParams({ signature, timestamp: ts, nonce })}`, headers: { "content-type": "text/xml" }, payload: "<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>" });
  t.equal((await post()).statusCode, 200, "fresh");
  nowMs += 30_000;
  t.equal((await post()).statusCode, 200, "exactly 30 s old: still inside");
  nowMs += 1_000;
  const late = await post();
  t.equal(late.statusCode, 401, "31 s old: the same signed request is now a replay");
});
