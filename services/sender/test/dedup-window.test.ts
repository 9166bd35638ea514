/**
 * WeChat de-duplicates a client_msg_id for 10 minutes, no longer. A call whose answer was
 * lost may have delivered the message; a retry after the window could deliver it again.
 * On a real nats-server and the simulator over HTTP, with one clock shared by the sender
 * and the simulator (moved forward instead of waiting).
 */
import t from "tap";
import type { JsMsg } from "@nats-io/jetstream";
import { Consumers, FailReason, Status, Streams, decodeJson } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { SENDER_MAX_DELIVER, WECHAT_DEDUP_WINDOW_MS, openBuckets, readDlqMeta, settle } from "@notify/nats";
import { FaultKind, startSimulator } from "@notify/wechat-simulator";
import { DEDUP_MARGIN_MS, createSendHandler, createWeChatChannel } from "@notify/sender";
import { dlqEntries, queueJob, startEnv } from "../../dlq-monitor/test-support/helpers.js";

const SECRET = "dedup-secret-1";
const MINUTE = 60_000;

const env = await startEnv(["wechat"], {}, undefined, SENDER_MAX_DELIVER);
t.teardown(() => env.close());
const { tokens } = await openBuckets(env.nc);
let offset = 0;
const clock = () => Date.now() + offset;
const sim = await startSimulator({ appId: "wx-dedup", appSecret: SECRET, clock });
t.teardown(() => sim.close());
const log = createLogger({ name: "sender-test", level: process.env.TEST_LOG_LEVEL ?? "silent" });
const metrics = createMetrics("sender-test");
const channel = createWeChatChannel({ apiBase: sim.url, appId: "wx-dedup", appSecret: SECRET, timeoutMs: 1000, tokens, log, metrics, now: clock });
t.teardown(() => channel.close());
const handle = createSendHandler({ js: env.js, records: env.records, channel, metrics, log, retry: { baseMs: 100, maxMs: 1000, jitter: 0 }, quotaParkMs: 1000, now: clock });
const consumer = await env.js.consumers.get(Streams.sends, Consumers.sender("wechat"));

async function run(sendId: string) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const msg: JsMsg | null = await consumer.next({ expires: 1000 });
    if (!msg) continue;
    t.equal(decodeJson<{ send_id: string }>(msg.data).send_id, sendId, "the job under test");
    const d = await handle(msg);
    await settle(msg, d);
    return d;
  }
  throw new Error(`no delivery of ${sendId}`);
}

const delivered = (sendId: string) => sim.messages.filter((m) => m.client_msg_id === sendId).length;

t.beforeEach(() => {
  sim.clearFaults();
});

t.test("dedup window - a lost answer, then 10 minutes (an outage, a park): no second call; dead, dedup_window_passed, in the DLQ", async (t) => {
  const { job } = await queueJob(env, "wechat");
  // WeChat takes the message, then the connection drops before the answer.
  sim.setFault({ kind: FaultKind.drop, afterAccept: true, times: 1 });
  const startedAt = clock();
  const first = await run(job.send_id);
  t.equal(first.kind, "nak", "retryable: the outcome is unknown");
  t.equal(delivered(job.send_id), 1, "WeChat did deliver it");
  const r1 = (await env.records.get(job.send_id))!.record;
  t.match(r1, { status: Status.retrying, attempts: 1 });
  t.ok(r1.uncertain_since && Math.abs(Date.parse(r1.uncertain_since) - startedAt) < 1000, "the record says when the uncertain call began");

  // The redelivery comes back after WeChat stopped de-duplicating the send id.
  offset += WECHAT_DEDUP_WINDOW_MS;
  const calls = sim.stats().sendCalls;
  const second = await run(job.send_id);
  t.same(second, { kind: "term" }, "terminated, not retried");
  t.equal(sim.stats().sendCalls, calls, "no call was made");
  t.equal(delivered(job.send_id), 1, "still one message");
  const r2 = (await env.records.get(job.send_id))!.record;
  t.match(r2, { status: Status.dead, reason: FailReason.dedupWindow, attempts: 1 });
  t.match(r2.last_error, /outcome is unknown \(network: .*\) and 10 min have passed since, beyond wechat's 10-minute de-duplication/);
  const dlq = await dlqEntries(env.jsm, job.send_id);
  t.equal(dlq.length, 1, "one DLQ copy, for an operator to replay or discard");
  t.match(readDlqMeta(dlq[0]!.header), { reason: FailReason.dedupWindow });

  // Why: the same send id after the window is a second message at WeChat.
  const again = await channel.send(job);
  t.equal(again.kind, "success");
  t.equal(delivered(job.send_id), 2, "a call now would have delivered it twice");
});

t.test("dedup window - the guard keeps its margin: 9 minutes after an uncertain call (the window less the margin) is already too late", async (t) => {
  const { job } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.timeout, afterAccept: true, times: 1 });
  t.equal((await run(job.send_id)).kind, "nak");
  offset += WECHAT_DEDUP_WINDOW_MS - DEDUP_MARGIN_MS;
  t.same(await run(job.send_id), { kind: "term" });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.dead, reason: FailReason.dedupWindow, last_error: /outcome is unknown \(timeout: / });
});

t.test("dedup window - a lost answer retried inside the window: the call is made and WeChat answers it as the same message", async (t) => {
  const { job } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.drop, afterAccept: true, times: 1 });
  t.equal((await run(job.send_id)).kind, "nak");
  offset += 5 * MINUTE;
  t.same(await run(job.send_id), { kind: "ack", confirm: true });
  const r = (await env.records.get(job.send_id))!.record;
  t.match(r, { status: Status.success, attempts: 2 });
  t.ok(r.uncertain_since, "the record keeps that one call went unanswered");
  t.equal(delivered(job.send_id), 1, "one message: WeChat de-duplicated the retry");
});

t.test("dedup window - an answer with an errcode is a refusal and starts no clock: 30 minutes later the retry is made", async (t) => {
  const { job } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: -1, times: 1 });
  t.equal((await run(job.send_id)).kind, "nak");
  t.equal((await env.records.get(job.send_id))!.record.uncertain_since, undefined, "no uncertain call");
  offset += 30 * MINUTE;
  t.same(await run(job.send_id), { kind: "ack", confirm: true });
  t.equal(delivered(job.send_id), 1);
});

t.test("dedup window - an HTTP error or a time-out counts as unanswered too, even when nothing was delivered: nothing can be known of it", async (t) => {
  for (const fault of [{ kind: FaultKind.http, status: 502 }, { kind: FaultKind.timeout }] as const) {
    const { job } = await queueJob(env, "wechat");
    sim.setFault({ ...fault, times: 1 });
    t.equal((await run(job.send_id)).kind, "nak", `${fault.kind}: retryable`);
    t.ok((await env.records.get(job.send_id))!.record.uncertain_since, `${fault.kind}: uncertain_since recorded`);
    offset += WECHAT_DEDUP_WINDOW_MS;
    t.same(await run(job.send_id), { kind: "term" }, `${fault.kind}: dead-lettered without a call`);
    t.equal(delivered(job.send_id), 0, `${fault.kind}: nothing was delivered, and nothing could be known of it`);
  }
});
