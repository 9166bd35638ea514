import t from "tap";
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { NatsServer } from "@notify/nats-server";
import { Subjects, encodeJson, sendIdFor, templateKey, type EventEnvelope } from "@notify/contracts";
import { openBuckets, RecordStore } from "@notify/nats";
import { startSimulator } from "@notify/wechat-simulator";
import { waitFor } from "../support/wait.js";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { scrapeCounter, startService, type ServiceProcess } from "../support/processes.js";

t.test("observability - every service's /metrics moves in an end-to-end run, and no log holds a secret", async (t) => {
  const APP_SECRET = `app-secret-${randomBytes(6).toString("hex")}`;
  const API_KEY = `key-${randomBytes(12).toString("hex")}`;
  const server = await NatsServer.start();
  const sim = await startSimulator({ appSecret: APP_SECRET, appId: "wx-metrics" });
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await nc.close();
    await sim.close();
    await server.stop();
  });

  const base = { NATS_URL: server.url, LOG_LEVEL: "debug" };
  const wechat = { WECHAT_API_BASE: sim.url, WECHAT_APP_ID: "wx-metrics", WECHAT_APP_SECRET: APP_SECRET, WECHAT_TIMEOUT_MS: "1000", RETRY_BASE_MS: "20", SENDER_ACK_WAIT_MS: "1500" };
  const procs: ServiceProcess[] = [
    startService("gateway", { ...base, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", GATEWAY_API_KEYS: API_KEY }),
    startService("dispatcher", base),
    startService("sender", { ...base, ...wechat }),
    startService("dlq-monitor", { ...base, DLQ_ALERT_THRESHOLD: "0", DLQ_CHECK_INTERVAL_MS: "500" }),
  ];
  const [gw, disp, snd, dlq] = await Promise.all(procs.map((p) => p.ready(30_000)));
  const gateway = new URL(String(gw!.docs)).origin;
  const url = { gateway: `${gateway}/metrics`, dispatcher: String(disp!.metrics), sender: String(snd!.metrics), dlq: String(dlq!.metrics) };

  const { templates } = await openBuckets(nc);
  await templates.put(templateKey("order.paid", "wechat", "zh-CN"), encodeJson(paidTemplate()));
  const js = jetstream(nc);
  const records = new RecordStore((await openBuckets(nc)).records);
  const sid = (e: EventEnvelope) => sendIdFor({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel: "wechat" });

  const ok = paidEvent();
  const retried = paidEvent();
  const permanent = paidEvent();
  const dead = paidEvent();
  sim.setFault({ kind: "errcode", errcode: -1, openid: retried.recipient.openid, times: 1 });
  sim.setFault({ kind: "errcode", errcode: 43004, openid: permanent.recipient.openid });
  sim.setFault({ kind: "errcode", errcode: 45011, openid: dead.recipient.openid });
  // Through the gateway's HTTP ingress (with a trace), and straight onto the bus.
  const traceparent = `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
  const r = await fetch(`${gateway}/notifications/events`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json", traceparent }, body: JSON.stringify(ok) });
  t.equal(r.status, 202);
  for (const e of [retried, permanent, dead]) await js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
  await js.publish(Subjects.event("ticket.expired"), encodeJson(paidEvent({ event: "ticket.expired", ticket_id: "T-1" })), { msgID: "no-template-1" });
  await js.publish(Subjects.event("order.paid"), encodeJson({ nonsense: true }), { msgID: "rejected-1" });
  await js.publish(Subjects.event(ok.event), encodeJson({ ...ok, id: `${ok.id}-dup` }), { msgID: `${ok.id}-dup` });

  const final = async (e: EventEnvelope, status: string) => waitFor(async () => (await records.get(sid(e)))?.record.status === status, `${status} for ${sid(e)}`, 30_000);
  await final(ok, "success");
  await final(retried, "success");
  await final(permanent, "failed");
  await final(dead, "dead");

  const c = scrapeCounter;
  t.ok((await c(url.gateway, "gateway_events_published_total")) >= 1, "gateway: events published");
  t.ok((await c(url.gateway, "gateway_http_requests_total")) >= 1, "gateway: requests counted");
  t.ok((await c(url.dispatcher, "notifications_events_total", { outcome: "queued" })) >= 4, "dispatcher: queued");
  t.ok((await c(url.dispatcher, "notifications_skipped_total", { reason: "no_template" })) >= 1, "dispatcher: skipped");
  t.ok((await c(url.dispatcher, "notifications_rejected_total")) >= 1, "dispatcher: rejected");
  t.ok((await c(url.dispatcher, "notifications_duplicates_total")) >= 1, "dispatcher: duplicates");
  t.equal(await c(url.sender, "notifications_sent_total", { status: "success" }), 2, "sender: success");
  t.equal(await c(url.sender, "notifications_sent_total", { status: "failed" }), 1, "sender: failed");
  t.ok((await c(url.sender, "notifications_retry_total")) >= 5, "sender: retries");
  t.ok((await c(url.sender, "notifications_e2e_latency_seconds_count")) >= 2, "sender: e2e latency observed");
  t.ok((await c(url.sender, "wechat_call_duration_seconds_count", { errcode: "45011" })) >= 5, "sender: WeChat calls by errcode");
  // The sender dead-letters a job after its fifth failed call itself; the DLQ monitor is the backstop.
  t.equal(await c(url.sender, "notifications_dlq_total", { reason: "max_deliveries" }), 1, "sender: dead letter counted");
  t.equal(await c(url.sender, "notifications_sent_total", { status: "dead" }), 1, "sender: dead");
  t.equal(await c(url.dlq, "notifications_dlq_total", { reason: "max_deliveries" }), 0, "dlq-monitor: nothing left for the backstop");
  await waitFor(async () => (await c(url.dlq, "notifications_alerts_total")) >= 1, "dlq-monitor: an alert");
  t.pass("dlq-monitor: alert counter moved");

  // The trace id from the HTTP caller reaches the dispatcher's and the sender's log lines.
  const traceId = traceparent.split("-")[1]!;
  t.ok(procs[1]!.lines.some((l) => l.includes(traceId)) || procs[2]!.lines.some((l) => l.includes(traceId)), "trace id in the workers' logs");

  const tokens = new Set<string>();
  for (const p of procs) for (const l of p.lines) for (const m of l.matchAll(/"access_token":"([^"]+)"/g)) tokens.add(m[1]!);
  const all = procs.map((p) => p.lines.join("\n")).join("\n");
  t.ok(all.length > 1000, "logs were captured");
  t.notOk(all.includes(APP_SECRET), "no app secret in any log");
  t.notOk(all.includes(API_KEY), "no API key in any log");
  t.equal(tokens.size, 0, "no access token field in any log");
  t.notMatch(all, /access_token=(?!\[redacted\])/, "no token in any logged URL");
});
