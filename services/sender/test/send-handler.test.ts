/**
 * The sender's handler, one decision at a time, on a real nats-server and a real WeChat
 * (the simulator over HTTP, with faults): each path from one job to its decision, its
 * record, its facts and its copies.
 */
import t from "tap";
import type { JsMsg } from "@nats-io/jetstream";
import { Consumers, HeaderNames, Status, Streams, Subjects, decodeJson, type AlertFact } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { createMetrics } from "@notify/metrics";
import { SENDER_MAX_DELIVER, openBuckets, readDlqMeta, settle, type Decision } from "@notify/nats";
import { FaultKind, nextBeijingMidnight, startSimulator } from "@notify/wechat-simulator";
import { createSendHandler, createWeChatChannel } from "@notify/sender";
import { dlqEntries, factsFor, queueJob, startEnv } from "../../dlq-monitor/test-support/helpers.js";

const SECRET = "handler-secret-5";
const RETRY = { baseMs: 200, maxMs: 5000, jitter: 0.1 };
const QUOTA_PARK_MS = 1000;

const env = await startEnv(["wechat"], {}, undefined, SENDER_MAX_DELIVER);
t.teardown(() => env.close());
const { tokens } = await openBuckets(env.nc);
const sim = await startSimulator({ appId: "wx-handler", appSecret: SECRET });
t.teardown(() => sim.close());
const log = createLogger({ name: "sender-test", level: process.env.TEST_LOG_LEVEL ?? "silent" });
const metrics = createMetrics("sender-test");
const channel = createWeChatChannel({ apiBase: sim.url, appId: "wx-handler", appSecret: SECRET, timeoutMs: 2000, tokens, log, metrics, forceRefresh: { minIntervalMs: 60_000, dailyCap: 15 } });
t.teardown(() => channel.close());
const alerts: { kind: AlertFact["kind"]; message: string }[] = [];
const handle = createSendHandler({ js: env.js, records: env.records, channel, metrics, log, retry: RETRY, quotaParkMs: QUOTA_PARK_MS, onAlert: (kind, _ch, message) => alerts.push({ kind, message }) });
const consumer = await env.js.consumers.get(Streams.sends, Consumers.sender("wechat"));

/** The next delivery of the job with this send_id (other jobs are not expected: each test settles its own). */
async function next(sendId: string, timeoutMs = 10_000): Promise<JsMsg> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = await consumer.next({ expires: 1000 });
    if (!m) continue;
    const id = decodeJson<{ send_id: string }>(m.data).send_id;
    if (id !== sendId) throw new Error(`unexpected job ${id} while waiting for ${sendId}`);
    return m;
  }
  throw new Error(`no delivery of ${sendId} in ${timeoutMs} ms`);
}

async function run(sendId: string): Promise<{ msg: JsMsg; d: Decision }> {
  const msg = await next(sendId);
  const d = await handle(msg);
  await settle(msg, d);
  return { msg, d };
}

t.beforeEach(() => {
  sim.clearFaults();
  alerts.length = 0;
});

t.test("sender handler - success: record success with the msgid, notification.sent, confirmed ack", async (t) => {
  const { job } = await queueJob(env, "wechat");
  const { d } = await run(job.send_id);
  t.same(d, { kind: "ack", confirm: true });
  const r = (await env.records.get(job.send_id))!.record;
  t.match(r, { status: Status.success, attempts: 1 });
  t.ok(r.wechat_msgid, "the WeChat msgid is kept");
  t.equal(r.next_attempt_at, undefined);
  t.equal((await factsFor(env.jsm, Subjects.sent, job.send_id)).length, 1, "one notification.sent");
  t.equal(sim.messages.filter((m) => m.client_msg_id === job.send_id).length, 1, "delivered once, under client_msg_id = send_id");
});

t.test("sender handler - retryable: retrying with next_attempt_at, nak(delay) from the back-off, then success on the next delivery", async (t) => {
  const { job } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: -1, times: 1 });
  const first = await run(job.send_id);
  t.equal(first.d.kind, "nak");
  const delay = (first.d as { delayMs: number }).delayMs;
  t.ok(delay >= 180 && delay <= 220, `attempt 1 waits ${delay} ms (200 ± 10%)`);
  const r = (await env.records.get(job.send_id))!.record;
  t.match(r, { status: Status.retrying, attempts: 1, last_error: /^-1: / });
  t.equal(Date.parse(r.next_attempt_at!) - Date.parse(r.updated_at), delay, "the record says when the next attempt is due");
  const second = await run(job.send_id);
  t.equal(second.msg.info.deliveryCount, 2);
  t.same(second.d, { kind: "ack", confirm: true });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.success, attempts: 2, next_attempt_at: undefined });
});

t.test("sender handler - the fifth failed call dead-letters the job itself: DLQ copy, record dead, notification.dead, term", async (t) => {
  const { job, seq } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: 45011 });
  const delays: (number | undefined)[] = [];
  let last: Decision | undefined;
  for (let n = 1; n <= 5; n++) {
    const { d, msg } = await run(job.send_id);
    t.equal(msg.info.deliveryCount, n);
    if (d.kind === "nak") delays.push(d.delayMs);
    last = d;
  }
  t.same(last, { kind: "term" }, "the fifth failure terminates the job: the server's max_deliver is not waited for");
  t.ok(delays.length === 4 && delays.every((d, i) => d! >= 200 * 2 ** i * 0.9 && d! <= 200 * 2 ** i * 1.1), `delays ${delays.join(", ")} ms double`);
  t.match((await env.records.get(job.send_id))!.record, { status: Status.dead, attempts: 5, reason: "max_deliveries", last_error: /^45011: /, next_attempt_at: undefined });
  const history = await env.records.history(job.send_id);
  t.same(history.filter((r) => r.status === Status.retrying).map((r) => r.attempts), [1, 2, 3, 4, 5], "a retrying record per call, the fifth before the dead-lettering");
  const dlq = await dlqEntries(env.jsm, job.send_id);
  t.equal(dlq.length, 1, "one DLQ copy");
  t.match(readDlqMeta(dlq[0]!.header), { send_id: job.send_id, attempts: 5, reason: "max_deliveries", last_error: /^45011: / });
  const dead = await factsFor(env.jsm, Subjects.dead, job.send_id);
  t.equal(dead.length, 1, "one notification.dead");
  t.equal(dead[0]?.stream_seq, seq);
  t.equal(await env.jsm.streams.getMessage(Streams.sends, { seq }).catch(() => null), null, "terminated: gone from SENDS");
});

t.test("sender handler - deliveries that made no call are not attempts: the budget is five calls however many deliveries", async (t) => {
  const { job } = await queueJob(env, "wechat");
  // Eight deliveries fail before any call (what the actor does when the handler throws on
  // a KV or stream timeout: a nak, no call).
  for (let n = 1; n <= 8; n++) (await next(job.send_id)).nak();
  sim.setFault({ kind: FaultKind.errcode, errcode: -1, times: 1 });
  const calls = sim.stats().sendCalls;
  const { d, msg } = await run(job.send_id);
  t.equal(msg.info.deliveryCount, 9);
  t.equal(d.kind, "nak", "a retryable failure after eight empty deliveries is retried, not dead-lettered");
  t.match((await env.records.get(job.send_id))!.record, { status: Status.retrying, attempts: 1 });
  const ok = await run(job.send_id);
  t.same(ok.d, { kind: "ack", confirm: true });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.success, attempts: 2 });
  t.equal(sim.stats().sendCalls - calls, 2, "two calls");
  t.equal(sim.messages.filter((m) => m.client_msg_id === job.send_id).length, 1, "delivered once");
});

t.test("sender handler - a job whose calls were all made but not dead-lettered (crash after the fifth call) is dead-lettered without a sixth call", async (t) => {
  const { job, seq } = await queueJob(env, "wechat");
  const msg = await next(job.send_id);
  // The record after the fifth failed call; the process died before the DLQ copy.
  await env.records.write(job.send_id, (c) => ({ ...c!, status: Status.retrying, attempts: 5, last_error: "-1: system busy", updated_at: new Date().toISOString() }));
  msg.nak();
  const calls = sim.stats().sendCalls;
  const { d } = await run(job.send_id);
  t.same(d, { kind: "term" });
  t.equal(sim.stats().sendCalls, calls, "no sixth call");
  t.match((await env.records.get(job.send_id))!.record, { status: Status.dead, attempts: 5, last_error: "-1: system busy" });
  t.equal((await dlqEntries(env.jsm, job.send_id)).length, 1);
  t.equal((await factsFor(env.jsm, Subjects.dead, job.send_id)).length, 1);
  t.equal(await env.jsm.streams.getMessage(Streams.sends, { seq }).catch(() => null), null);
});

t.test("sender handler - permanent: copied to the DLQ, record failed, notification.failed, term", async (t) => {
  const { job } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: 43004, times: 1 });
  const { d } = await run(job.send_id);
  t.same(d, { kind: "term" });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.failed, reason: "wechat_permanent", attempts: 1, last_error: /^43004: / });
  const [dlq] = await dlqEntries(env.jsm, job.send_id);
  t.ok(dlq, "the job is in the DLQ");
  t.match(readDlqMeta(dlq!.header), { send_id: job.send_id, attempts: 1, reason: "wechat_permanent", last_error: /^43004: / });
  t.equal((await factsFor(env.jsm, Subjects.failed, job.send_id)).length, 1);
});

t.test("sender handler - daily quota (45009): parked until midnight Beijing time with its own deliveries, alert, then sent after the reset", async (t) => {
  // A clock one second before midnight in Beijing, shared by the client (which says when the quota resets) and the handler.
  const offset = nextBeijingMidnight(Date.now()) - 1000 - Date.now();
  const clock = () => Date.now() + offset;
  const midnight = nextBeijingMidnight(clock());
  const quotaChannel = createWeChatChannel({ apiBase: sim.url, appId: "wx-handler", appSecret: SECRET, timeoutMs: 2000, tokens, log, metrics, now: clock });
  t.teardown(() => quotaChannel.close());
  const quotaHandle = createSendHandler({ js: env.js, records: env.records, channel: quotaChannel, metrics, log, retry: RETRY, quotaParkMs: 3_600_000, random: () => 0, now: clock, onAlert: (kind, _ch, message) => alerts.push({ kind, message }) });
  const runQ = async (sendId: string) => {
    const msg = await next(sendId);
    const d = await quotaHandle(msg);
    await settle(msg, d);
    return { msg, d };
  };
  const { job } = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: 45009, times: 1 });
  const first = await runQ(job.send_id);
  t.same(first.d, { kind: "ack", confirm: true }, "the original is acked: no delivery burnt");
  const r = (await env.records.get(job.send_id))!.record;
  t.match(r, { status: Status.retrying, attempts: 1, last_error: /^45009: / });
  t.equal(r.next_attempt_at, new Date(midnight).toISOString(), "next attempt at midnight Beijing time, not QUOTA_PARK_MS (an hour here)");
  t.same(alerts.map((a) => a.kind), ["quota_exceeded"]);

  // The parked copy: its first delivery only waits for the reset.
  const parked = await next(job.send_id);
  t.equal(parked.headers?.get(HeaderNames.attemptsBefore), "1");
  t.equal(parked.headers?.get(HeaderNames.notBefore), String(midnight));
  const wait = await quotaHandle(parked);
  t.equal(wait.kind, "nak");
  t.ok((wait as { delayMs: number }).delayMs <= 1000, "waits out the rest of the day");
  await settle(parked, wait);
  const after = await runQ(job.send_id);
  t.ok(clock() >= midnight, "not sent before the reset");
  t.same(after.d, { kind: "ack", confirm: true });
  t.match((await env.records.get(job.send_id))!.record, { status: Status.success, attempts: 2 });
});

t.test("sender handler - a parked copy parked again without a call (the quota moved on meanwhile) is a new message, not a de-duplicated one", async (t) => {
  // Before the fix the second park reused the first copy's msg id (send_id.park.<attempts>):
  // SENDS de-duplicated it inside its 2-minute window, the copy being handled was acked,
  // and the job was gone with its record at `retrying`.
  let at = nextBeijingMidnight(Date.now()) - 1000;
  const clock = () => at;
  const midnight = nextBeijingMidnight(at);
  const quotaChannel = createWeChatChannel({ apiBase: sim.url, appId: "wx-handler", appSecret: SECRET, timeoutMs: 2000, tokens, log, metrics, now: clock });
  t.teardown(() => quotaChannel.close());
  const h = createSendHandler({ js: env.js, records: env.records, channel: quotaChannel, metrics, log, retry: RETRY, quotaParkMs: 3_600_000, random: () => 0, now: clock });
  const step = async (sendId: string) => {
    const msg = await next(sendId);
    const d = await h(msg);
    await settle(msg, d);
    return { msg, d };
  };
  const a = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: 45009, times: 1 });
  t.same((await step(a.job.send_id)).d, { kind: "ack", confirm: true }, "A refused for the day: parked until midnight");
  const aCopy = await next(a.job.send_id);
  t.equal(aCopy.headers?.get(HeaderNames.notBefore), String(midnight));
  aCopy.nak(3000); // waiting for the reset (the handler's nak, made longer than B's turn)
  // Just past midnight the new day's quota is spent at once: B learns the next reset.
  at = midnight + 1000;
  const b = await queueJob(env, "wechat");
  sim.setFault({ kind: FaultKind.errcode, errcode: 45009, times: 1 });
  t.same((await step(b.job.send_id)).d, { kind: "ack", confirm: true }, "B refused: the quota is spent until the next midnight");
  const bCopy = await next(b.job.send_id);
  t.equal(bCopy.headers?.get(HeaderNames.attemptsBefore), "1");
  bCopy.nak(60_000);
  // A's copy wakes (its reset passed) while the handler knows the quota is spent: parked
  // again without a call, with the same attempts.
  const calls = sim.stats().sendCalls;
  const woke = await step(a.job.send_id);
  t.equal(woke.msg.headers?.get(HeaderNames.attemptsBefore), "1");
  t.same(woke.d, { kind: "ack", confirm: true });
  t.equal(sim.stats().sendCalls, calls, "no call while the quota is known to be spent");
  const again = await next(a.job.send_id, 5000).catch(() => null);
  t.ok(again, "A's second parked copy is in SENDS");
  t.not(again?.seq, woke.msg.seq, "a new message");
  t.equal(again?.headers?.get(HeaderNames.attemptsBefore), "1", "carrying the one call made");
  again?.term();
  bCopy.term();
});

t.test("sender handler - WeChat keeps refusing the token: one forced refresh, then retryable with an alert, never a refresh storm", async (t) => {
  sim.setFault({ kind: FaultKind.errcode, errcode: 40001 });
  const before = sim.stats().forceRefreshes;
  const a = await queueJob(env, "wechat");
  const first = await run(a.job.send_id);
  t.equal(first.d.kind, "nak", "still refused after the forced refresh: retryable");
  t.equal(sim.stats().forceRefreshes - before, 1, "one forced refresh");
  const b = await queueJob(env, "wechat");
  const second = await run(b.job.send_id);
  t.equal(second.d.kind, "nak");
  t.equal(sim.stats().forceRefreshes - before, 1, "the budget refuses a second one within the interval");
  t.ok((second.d as { delayMs: number }).delayMs >= RETRY.maxMs * 0.9, "the job waits for the budget (stretched to RETRY_MAX_MS)");
  t.match((await env.records.get(b.job.send_id))!.record, { status: Status.retrying, last_error: /^token_refresh_budget: / });
  t.ok(alerts.some((x) => x.kind === "token_refresh_budget"), "an operator alert");
  sim.clearFaults();
  // Both jobs come back and go out once WeChat takes the token again.
  for (let i = 0; i < 2; i++) {
    const m = await consumer.next({ expires: 10_000 });
    t.ok(m, "redelivered");
    const sid = decodeJson<{ send_id: string }>(m!.data).send_id;
    t.ok(sid === a.job.send_id || sid === b.job.send_id);
    await settle(m!, await handle(m!));
  }
  t.match((await env.records.get(a.job.send_id))!.record, { status: Status.success });
  t.match((await env.records.get(b.job.send_id))!.record, { status: Status.success });
});

t.test("sender handler - a redelivery that finds success re-publishes the fact and does not call WeChat again", async (t) => {
  const { job } = await queueJob(env, "wechat");
  const msg = await next(job.send_id);
  const d = await handle(msg);
  t.same(d, { kind: "ack", confirm: true });
  // The process died before its ack reached the server: the job comes back.
  msg.nak();
  const calls = sim.stats().sendCalls;
  const again = await run(job.send_id);
  t.equal(again.msg.info.deliveryCount, 2);
  t.same(again.d, { kind: "ack", confirm: true });
  t.equal(sim.stats().sendCalls, calls, "no second call to WeChat");
  t.equal((await factsFor(env.jsm, Subjects.sent, job.send_id)).length, 1, "one fact (same msg id, de-duplicated)");
  t.equal(sim.messages.filter((m) => m.client_msg_id === job.send_id).length, 1);
});
