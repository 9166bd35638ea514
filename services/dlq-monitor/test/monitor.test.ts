import t, { type Test } from "tap";
import { Consumers, FailReason, HeaderNames, Status, Streams, Subjects, childTrace, type AlertFact } from "@notify/contracts";
import { publishToDlq } from "@notify/nats";
import type { JsMsg } from "@nats-io/jetstream";
import { createMetrics } from "@notify/metrics";
import { createAdvisoryHandler, createDlqMonitor, type AdvisoryOutcome, type DlqMonitor, type DlqMonitorSettings } from "@notify/dlq-monitor";
import {
  advisories,
  advisoriesSettled,
  alertFacts,
  captureLogger,
  counterValue,
  dlqEntries,
  factsFor,
  failJobs,
  lastErrorOf,
  queueJob,
  startEnv,
  streamMessages,
  waitFor,
  type Env,
} from "../test-support/helpers.js";

const CHANNELS = ["wechat", "mstop", "redeliv", "race2", "crash", "crash2", "raced"];
let env: Env;

t.before(async () => {
  env = await startEnv(CHANNELS);
});
t.teardown(() => env.close());

interface Harness {
  monitor: DlqMonitor;
  alerts: AlertFact[];
  /** Every advisory handled, with the SENDS sequence it named. */
  handled: { outcome: AdvisoryOutcome; seq: number | null }[];
  /** Outcomes of the advisories for one SENDS sequence. */
  outcomes(seq: number): AdvisoryOutcome[];
  logs: ReturnType<typeof captureLogger>;
}

async function startMonitor(t: Test, settings: Partial<DlqMonitorSettings> = {}): Promise<Harness> {
  const logs = captureLogger();
  const alerts: AlertFact[] = [];
  const handled: Harness["handled"] = [];
  const monitor = createDlqMonitor({
    nc: env.nc,
    log: logs.log,
    settings: { dlqAlertThreshold: 1000, concurrency: 4, ...settings },
    onAlert: (a) => alerts.push(a),
    onAdvisory: (outcome, a) => handled.push({ outcome, seq: a?.stream_seq ?? null }),
  });
  t.teardown(() => monitor.close());
  await monitor.start();
  await monitor.alertsLive();
  return { monitor, alerts, handled, outcomes: (seq) => handled.filter((x) => x.seq === seq).map((x) => x.outcome), logs };
}

const dlqTotal = (h: Harness, channel: string) => counterValue(h.monitor.metrics.registry, "notifications_dlq_total", { channel, reason: FailReason.maxDeliveries });
const deadTotal = (h: Harness, channel: string) => counterValue(h.monitor.metrics.registry, "notifications_sent_total", { channel, status: Status.dead });

/** The whole post-condition of one job dead-lettered after five failures. */
async function assertDeadLettered(t: Test, sendId: string, seq: number) {
  const entries = await dlqEntries(env.jsm, sendId);
  t.equal(entries.length, 1, "exactly one DLQ entry");
  const h = entries[0]!.header;
  t.equal(h.get(HeaderNames.attempts), "5", "DLQ entry: attempts = 5");
  t.equal(h.get(HeaderNames.lastError), lastErrorOf(5), "DLQ entry: the last error");
  t.equal(h.get(HeaderNames.reason), FailReason.maxDeliveries, "DLQ entry: reason max_deliveries");
  const rec = (await env.records.get(sendId))?.record;
  t.equal(rec?.status, Status.dead, "record is dead");
  t.equal(rec?.attempts, 5, "record: attempts = 5");
  t.equal(rec?.last_error, lastErrorOf(5), "record: the last error");
  t.equal(rec?.reason, FailReason.maxDeliveries);
  const history = (await env.records.history(sendId)).map((r) => r.status);
  t.same(history.filter((s) => s === Status.dead), [Status.dead], "dead written once in the status history");
  t.equal(await env.jsm.streams.getMessage(Streams.sends, { seq }), null, "job gone from SENDS");
  const dead = await factsFor(env.jsm, Subjects.dead, sendId);
  t.equal(dead.length, 1, "notification.dead published once");
  t.equal(dead[0]?.attempts, 5);
}

t.test("dlq-monitor - five failures land once in the DLQ", async (t) => {
  const h = await startMonitor(t, { dlqAlertThreshold: 0 });
  const trace = childTrace();
  const q = await queueJob(env, "wechat", trace.traceparent);
  await failJobs(env, "wechat", [q]);
  await waitFor(async () => (await env.records.get(q.job.send_id))?.record.status === Status.dead && (await env.jsm.streams.getMessage(Streams.sends, { seq: q.seq })) === null, "job dead-lettered");
  await waitFor(() => advisoriesSettled(env.jsm), "advisory acked");
  await assertDeadLettered(t, q.job.send_id, q.seq);
  t.equal(await dlqTotal(h, "wechat"), 1, "notifications_dlq_total{channel,reason=max_deliveries} = 1");
  t.equal(await deadTotal(h, "wechat"), 1, "notifications_sent_total{status=dead} = 1");
  t.same(h.outcomes(q.seq), ["dead"]);

  // DLQ depth 1 > threshold 0: one alert, published, logged at error.
  const alerts = await waitFor(async () => {
    const a = await alertFacts(env.jsm, "dlq_depth");
    return a.length ? a : null;
  }, "dlq_depth alert fact");
  t.equal(alerts.length, 1, "one dlq_depth alert fact");
  t.match(alerts[0], { kind: "dlq_depth", channel: "all", value: 1, threshold: 0 });
  t.equal(h.alerts.length, 1, "one alert raised");
  t.same(await alertFacts(env.jsm, "consecutive_failures"), [], "one failure is not a streak");
  t.ok(h.logs.lines().some((l) => l.includes('"level":"error"') && l.includes("dlq_depth")), "alert logged at error");
  t.ok(h.logs.lines().some((l) => l.includes("max deliveries reached") && l.includes(q.job.send_id) && l.includes(`"trace_id":"${trace.traceId}"`)), "dead letter logged with its send_id and trace id");
  t.equal((await dlqEntries(env.jsm, q.job.send_id))[0]?.header.get(HeaderNames.traceparent), trace.traceparent, "the DLQ copy keeps the trace context");
  const deadMsg = (await streamMessages(env.jsm, Streams.notifications, Subjects.dead)).find((m) => m.header?.get(HeaderNames.traceparent) === trace.traceparent);
  t.ok(deadMsg, "so does notification.dead");
  t.equal(await counterValue(h.monitor.metrics.registry, "notifications_alerts_total", { kind: "dlq_depth", channel: "all" }), 1);
});

t.test("dlq-monitor - stopped during the failures and started afterwards, nothing is lost", async (t) => {
  // No monitor runs while the job fails: the ADVISORIES stream keeps the advisory.
  const q = await queueJob(env, "mstop");
  await failJobs(env, "mstop", [q]);
  const adv = (await advisories(env.jsm)).filter((a) => a.stream_seq === q.seq);
  t.equal(adv.length, 1, "the advisory waits in ADVISORIES");
  t.match(adv[0], { stream: Streams.sends, consumer: Consumers.sender("mstop"), deliveries: 5 });
  t.equal((await env.records.get(q.job.send_id))?.record.status, Status.retrying, "not dead yet");

  const h = await startMonitor(t);
  await waitFor(async () => h.outcomes(q.seq).length === 1 && (await advisoriesSettled(env.jsm)), "advisory handled after the start");
  await assertDeadLettered(t, q.job.send_id, q.seq);
  t.equal(await dlqTotal(h, "mstop"), 1);
  t.equal(await deadTotal(h, "mstop"), 1);
});

t.test("dlq-monitor - a redelivered advisory neither double-copies nor double-counts", async (t) => {
  const q = await queueJob(env, "redeliv");
  await failJobs(env, "redeliv", [q]);
  const adv = (await advisories(env.jsm)).find((a) => a.stream_seq === q.seq)!;
  // The same advisory twice more, as a redelivery (or a second server copy) would bring it.
  await env.js.publish(adv.subject, adv.data);
  await env.js.publish(adv.subject, adv.data);

  const h = await startMonitor(t, { concurrency: 4 });
  await waitFor(async () => h.outcomes(q.seq).length === 3 && (await advisoriesSettled(env.jsm)), "three copies handled");
  await assertDeadLettered(t, q.job.send_id, q.seq);
  t.equal(h.outcomes(q.seq).filter((o) => o === "dead").length, 1, "one delivery made the transition");
  const others = h.outcomes(q.seq).filter((o) => o !== "dead");
  t.equal(others.length, 2);
  t.ok(others.every((o) => o === "already_dead" || o === "gone"), `the other copies found it done (${others.join(", ")})`);
  t.equal(await dlqTotal(h, "redeliv"), 1, "counted once");
  t.equal(await deadTotal(h, "redeliv"), 1, "counted once");
});

t.test("dlq-monitor - two replicas handling the same advisory at once copy and count it once", async (t) => {
  const q = await queueJob(env, "race2");
  await failJobs(env, "race2", [q]);
  const adv = (await advisories(env.jsm)).find((a) => a.stream_seq === q.seq)!;
  const metrics = createMetrics("dlq-monitor-race");
  const outcomes: AdvisoryOutcome[] = [];
  const { log } = captureLogger();
  // Two handlers (as two replicas would run them) against the real server, at the same moment.
  const handlers = [1, 2].map(() => createAdvisoryHandler({ js: env.js, jsm: env.jsm, records: env.records, metrics, log, onOutcome: (o) => outcomes.push(o) }));
  const msg = { data: adv.data, subject: adv.subject, seq: adv.seq } as unknown as JsMsg;
  const decisions = await Promise.all(handlers.map((h) => h(msg)));
  t.same(decisions.map((d) => d.kind), ["ack", "ack"]);
  t.equal(outcomes.filter((o) => o === "dead").length, 1, `one made the transition (${outcomes.join(", ")})`);
  await assertDeadLettered(t, q.job.send_id, q.seq);
  t.equal(await counterValue(metrics.registry, "notifications_dlq_total", { channel: "race2", reason: FailReason.maxDeliveries }), 1);
  t.equal(await counterValue(metrics.registry, "notifications_sent_total", { channel: "race2", status: Status.dead }), 1);
});

t.test("dlq-monitor - a crash after recording dead is finished by the redelivered advisory", async (t) => {
  const q = await queueJob(env, "crash");
  await failJobs(env, "crash", [q]);
  // A monitor copied the job and recorded dead, then died before publishing, deleting, acking.
  await publishToDlq(env.js, q.job, { send_id: q.job.send_id, attempts: 5, last_error: lastErrorOf(5), reason: FailReason.maxDeliveries, source_seq: q.seq });
  await env.records.write(q.job.send_id, (c) => ({ ...c!, status: Status.dead, attempts: 5, reason: FailReason.maxDeliveries, last_error: lastErrorOf(5) }));

  const h = await startMonitor(t);
  await waitFor(async () => h.outcomes(q.seq).length === 1 && (await advisoriesSettled(env.jsm)), "advisory handled");
  t.same(h.outcomes(q.seq), ["already_dead"]);
  await assertDeadLettered(t, q.job.send_id, q.seq);
  t.equal(await dlqTotal(h, "crash"), 0, "not counted again by the delivery that did not make the transition");
});

t.test("dlq-monitor - a crash after the DLQ copy is finished without a second copy", async (t) => {
  const q = await queueJob(env, "crash2");
  await failJobs(env, "crash2", [q]);
  await publishToDlq(env.js, q.job, { send_id: q.job.send_id, attempts: 5, last_error: lastErrorOf(5), reason: FailReason.maxDeliveries, source_seq: q.seq });

  const h = await startMonitor(t);
  await waitFor(async () => h.outcomes(q.seq).length === 1 && (await advisoriesSettled(env.jsm)), "advisory handled");
  t.same(h.outcomes(q.seq), ["dead"]);
  await assertDeadLettered(t, q.job.send_id, q.seq);
  t.equal(await dlqTotal(h, "crash2"), 1);
});

t.test("dlq-monitor - a success that raced the advisory is not dead-lettered", async (t) => {
  const q = await queueJob(env, "raced");
  await failJobs(env, "raced", [q]);
  await env.records.write(q.job.send_id, (c) => ({ ...c!, status: Status.success, attempts: 5, sent_at: new Date().toISOString() }));

  const h = await startMonitor(t);
  await waitFor(async () => h.outcomes(q.seq).length === 1 && (await advisoriesSettled(env.jsm)), "advisory handled");
  t.same(h.outcomes(q.seq), ["final"]);
  t.equal((await env.records.get(q.job.send_id))?.record.status, Status.success, "success stands");
  t.same(await dlqEntries(env.jsm, q.job.send_id), [], "no DLQ entry");
  t.same(await factsFor(env.jsm, Subjects.dead, q.job.send_id), [], "no dead fact");
  t.equal(await env.jsm.streams.getMessage(Streams.sends, { seq: q.seq }), null, "job cleaned out of SENDS");
  t.equal(await dlqTotal(h, "raced"), 0);
});

t.test("dlq-monitor - malformed advisories are acked, not retried forever", async (t) => {
  const h = await startMonitor(t);
  await env.js.publish(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SENDS.sender-wechat`, new TextEncoder().encode("not json"));
  await env.js.publish(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SENDS.sender-wechat`, new TextEncoder().encode(JSON.stringify({ stream: Streams.sends, consumer: "sender-wechat", stream_seq: 999_999, deliveries: 5 })));
  await waitFor(async () => h.outcomes(999_999).length === 1 && h.handled.some((x) => x.seq === null) && (await advisoriesSettled(env.jsm)), "both acked");
  t.same(h.outcomes(999_999), ["orphan"], "an advisory whose job is gone on its first delivery: the server dropped it");
  t.equal(await counterValue(h.monitor.metrics.registry, "notifications_dlq_orphan_advisories_total", { consumer: "sender-wechat" }), 1, "counted");
  const orphanLog = h.logs.lines().find((l) => l.includes("dropped by the server"));
  t.match(orphanLog, /"stream_seq":999999/, "logged, naming the sequence");
  t.match(orphanLog, /"level":("error"|50)/, "as an error");
  t.ok(h.handled.some((x) => x.outcome === "invalid" && x.seq === null), "a malformed one");
  t.ok(await h.monitor.ready(), "ready");
});
