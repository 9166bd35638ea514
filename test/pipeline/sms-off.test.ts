import t from "tap";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { ConfigError } from "@notify/config";
import { Consumers, Streams, Subjects, encodeJson, sendIdFor, templateKey, type TemplateInput } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { NatsServer } from "@notify/nats-server";
import { RecordStore, ensureTopology } from "@notify/nats";
import { loadDispatcherConfig, startDispatcher } from "@notify/dispatcher";
import { createWeChatChannel, loadSenderConfig, startSender } from "@notify/sender";
import { normalizeTemplate } from "@notify/templates";
import { startSimulator } from "@notify/wechat-simulator";
import { paidEvent } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";

t.test("sms off - the default config needs nothing SMS-related, and an SMS sender names each missing credential", async (t) => {
  const c = loadSenderConfig({});
  t.equal(c.SENDER_CHANNEL, "wechat");
  t.equal(c.TENCENT_SECRET_ID, undefined);
  const err = t.throws(() => loadSenderConfig({ SENDER_CHANNEL: "sms", TENCENT_SECRET_ID: "AKID1", TENCENT_SMS_SIGN_NAME: "TravelCo" })) as ConfigError;
  t.ok(err instanceof ConfigError);
  t.same(err.variables, ["TENCENT_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID"]);
  t.match(err.message, /TENCENT_SECRET_KEY: required when SENDER_CHANNEL=sms/);
  t.notOk(err.message.includes("AKID1"), "values are not echoed");
  t.equal(loadSenderConfig({ SENDER_CHANNEL: "sms", TENCENT_SECRET_ID: "a", TENCENT_SECRET_KEY: "b", TENCENT_SMS_SDK_APP_ID: "1", TENCENT_SMS_SIGN_NAME: "s" }).SENDER_CHANNEL, "sms");
});

t.test("sms off - with CHANNELS=wechat a 43004 under a fallback template sends nothing by SMS and creates nothing SMS", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  const wechat = await startSimulator();
  t.teardown(() => wechat.close());
  t.same(loadDispatcherConfig({}).CHANNELS, ["wechat"], "the default is wechat only");
  const log = createLogger({ name: "sms-off", level: "silent" });
  const metrics = createMetrics("test");
  const dispatcher = await startDispatcher({ nc, log, metrics, channels: loadDispatcherConfig({}).CHANNELS, concurrency: 8 });
  t.teardown(() => dispatcher.close());
  const sender = await startSender({
    nc, log, metrics, concurrency: 4, retry: { baseMs: 50, maxMs: 500, jitter: 0 }, quotaParkMs: 60_000,
    topology: { channels: ["wechat"] },
    createChannel: ({ buckets }) => createWeChatChannel({ apiBase: wechat.url, appId: wechat.appId, appSecret: "local-simulator-secret", timeoutMs: 1000, tokens: buckets.tokens, log, metrics }),
  });
  t.teardown(() => sender.close());
  for (const input of [
    { event: "ticket.refunded", channel: "wechat", template_id: "TPL_REFUND", data: { thing1: "{{order_id}}" }, fallback: "sms" },
    { event: "ticket.refunded", channel: "sms", template_id: "2001", params: ["{{order_id}}"] },
  ] as TemplateInput[]) {
    const tpl = normalizeTemplate(input);
    await topo.buckets.templates.put(templateKey(tpl.event, tpl.channel, tpl.language), encodeJson(tpl));
    await waitFor(() => dispatcher.templates.get(tpl.event, tpl.channel, tpl.language), "template cached");
  }
  wechat.setFault({ kind: "errcode", errcode: 43004, openid: "oGone" });
  const e = paidEvent({ event: "ticket.refunded", order_id: `O-OFF-${process.pid}`, recipient: { openid: "oGone", phone: "+8613812345678" } });
  await jetstream(nc).publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
  const records = new RecordStore(topo.buckets.records);
  const key = { event: e.event, order_id: e.order_id, ticket_id: null };
  const wx = await waitFor(async () => {
    const r = (await records.get(sendIdFor({ ...key, channel: "wechat" })))?.record;
    return r?.status === "failed" ? r : null;
  }, "wechat failed");
  t.equal(wx.fallback_send_id, undefined, "no fallback prepared while SMS is off");
  await sleep(500);
  t.equal(await records.get(sendIdFor({ ...key, channel: "sms" })), null, "no SMS record");
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(Streams.sends, { subjects_filter: Subjects.send("sms") });
  t.same(info.state.subjects ?? {}, {}, "nothing was ever published on notify.send.sms");
  const consumers: string[] = [];
  for await (const c of jsm.consumers.list(Streams.sends)) consumers.push(c.name);
  t.notOk(consumers.includes(Consumers.sender("sms")), "no sender-sms consumer");
});
