/**
 * WeChat refusing the account rather than the message (the server's IP not whitelisted,
 * no permission for the API): the job keeps its class, and the operator hears of it on the
 * first answer (`account_config`), on a real nats-server and the simulator over HTTP.
 */
import t from "tap";
import fc from "fast-check";
import type { JsMsg } from "@nats-io/jetstream";
import { Consumers, Status, Streams, decodeJson, type AlertFact } from "@notify/contracts";
import { PROVIDER_ALERT_KINDS } from "@notify/alerting";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { openBuckets, settle } from "@notify/nats";
import { ErrcodeClass, WeChatErrcode, classifyErrcode, isAccountConfigErrcode } from "@notify/wechat";
import { FaultKind, startSimulator } from "@notify/wechat-simulator";
import { createSendHandler, createWeChatChannel } from "@notify/sender";
import { queueJob, startEnv } from "../../dlq-monitor/test-support/helpers.js";

const SECRET = "account-config-secret";
const env = await startEnv(["wechat"]);
t.teardown(() => env.close());
const { tokens } = await openBuckets(env.nc);
const sim = await startSimulator({ appId: "wx-account", appSecret: SECRET });
t.teardown(() => sim.close());
const log = createLogger({ name: "sender-test", level: process.env.TEST_LOG_LEVEL ?? "silent" });
const metrics = createMetrics("sender-account-test");
const channel = createWeChatChannel({ apiBase: sim.url, appId: "wx-account", appSecret: SECRET, timeoutMs: 2000, tokens, log, metrics, forceRefresh: { minIntervalMs: 60_000, dailyCap: 15 } });
t.teardown(() => channel.close());
const alerts: { kind: AlertFact["kind"]; message: string }[] = [];
const handle = createSendHandler({ js: env.js, records: env.records, channel, metrics, log, retry: { baseMs: 100, maxMs: 1000, jitter: 0 }, quotaParkMs: 1000, onAlert: (kind, _ch, message) => alerts.push({ kind, message }) });
const consumer = await env.js.consumers.get(Streams.sends, Consumers.sender("wechat"));

async function next(sendId: string): Promise<JsMsg> {
  for (let i = 0; i < 20; i++) {
    const m = await consumer.next({ expires: 1000 });
    if (!m) continue;
    t.equal(decodeJson<{ send_id: string }>(m.data).send_id, sendId, "the expected job");
    return m;
  }
  throw new Error(`no delivery of ${sendId}`);
}

t.beforeEach(() => {
  sim.clearFaults();
  sim.setIpWhitelist(null);
  alerts.length = 0;
});

t.test("account config - the server's IP is not whitelisted: retryable, one account_config alert naming 40164, sent once it is", async (t) => {
  sim.setIpWhitelist(["203.0.113.7"]);
  const { job } = await queueJob(env, "wechat");
  const first = await next(job.send_id);
  const d = await handle(first);
  t.equal(d.kind, "nak", "retryable: the operator may fix the whitelist within the retries");
  await settle(first, { kind: "nak", delayMs: 100 });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.retrying, last_error: /40164/ });
  t.same(alerts.map((a) => a.kind), ["account_config"], "alerted on the first refusal");
  t.match(alerts[0]!.message, /not in whitelist/, "the alert says why");
  t.notMatch(alerts[0]!.message, new RegExp(SECRET), "no secret in the alert");
  sim.setIpWhitelist(null);
  const again = await next(job.send_id);
  t.same(await handle(again), { kind: "ack", confirm: true });
  await settle(again, { kind: "ack", confirm: true });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.success });
  t.equal(sim.messages.filter((m) => m.client_msg_id === job.send_id).length, 1, "delivered once");
  t.equal(alerts.length, 1, "no alert for the success");
});

t.test("account config - 48001 (no API permission) is permanent and alerts; a message's own errors do not", async (t) => {
  sim.setFault({ kind: FaultKind.errcode, errcode: WeChatErrcode.apiUnauthorized, times: 1 });
  const a = await queueJob(env, "wechat");
  const m = await next(a.job.send_id);
  const d = await handle(m);
  t.equal(d.kind, "term", "permanent");
  await settle(m, d);
  t.match((await env.records.get(a.job.send_id))!.record, { status: Status.failed, last_error: /^48001/ });
  t.same(alerts.map((x) => x.kind), ["account_config"]);

  alerts.length = 0;
  for (const errcode of [WeChatErrcode.invalidTemplateId, WeChatErrcode.systemBusy]) {
    sim.setFault({ kind: FaultKind.errcode, errcode, times: 1 });
    const b = await queueJob(env, "wechat");
    const mb = await next(b.job.send_id);
    const db = await handle(mb);
    await settle(mb, db.kind === "nak" ? { kind: "term" } : db);
    t.same(alerts, [], `errcode ${errcode}: the message's problem, no account alert`);
  }
});

t.test("account config - the alert is forwarded like every provider alert", async (t) => {
  t.ok(PROVIDER_ALERT_KINDS.has("account_config"), "the alerting unit forwards it to the webhook");
});

t.test("account config - only account answers are account_config, and none changes the job's class", async (t) => {
  const account = [40013, 40125, 40164, 40243, 41002, 41004, 48001, 89503];
  for (const code of account) t.ok(isAccountConfigErrcode(code), `${code}`);
  t.notOk(isAccountConfigErrcode(null), "no errcode (a time-out) is not");
  fc.assert(
    fc.property(fc.integer({ min: -2, max: 100_000 }), (code) => {
      if (!account.includes(code)) return !isAccountConfigErrcode(code);
      // 48001 stays permanent; the token-endpoint codes are not send answers (unknown: retryable).
      return classifyErrcode(code) === (code === 48001 ? ErrcodeClass.permanent : ErrcodeClass.retryable);
    }),
    { numRuns: 2000 },
  );
});
