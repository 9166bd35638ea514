import t from "tap";
import { FailReason, Subjects, backoffDelay, encodeJson, type AlertFact } from "@notify/contracts";
import { Type } from "typebox";
import { ConfigError, loadConfig } from "@notify/config";
import { AlertRules, AlertWebhook, AlertingEnv, alertingSettings, toObservation, webhookOrigin, type Observation } from "@notify/alerting";
import { captureLogger, startWebhookServer } from "../../../test/support/webhook.js";

const MIN = 60_000;
const T0 = Date.parse("2026-11-24T08:00:00Z");
const rules = (o: Partial<ConstructorParameters<typeof AlertRules>[0]> = {}) =>
  new AlertRules({ consecutiveFailures: 3, dlqDepthThreshold: 100, dedupWindowMs: 10 * MIN, ...o });
const fail = (send_id: string, channel = "wechat", seq?: number): Observation => ({ kind: "failure", channel, send_id, seq });
const sent = (send_id: string, channel = "wechat"): Observation => ({ kind: "sent", channel, send_id });

t.test("alerts - four consecutive failures raise one alert, not four", async (t) => {
  const r = rules();
  const raised = [1, 2, 3, 4].flatMap((i) => r.observe(fail(`s${i}`, "wechat", 10 + i), T0 + i));
  t.equal(raised.length, 1, "one alert");
  t.match(raised[0]!.fact, { kind: "consecutive_failures", channel: "wechat", value: 4, threshold: 3 });
  t.equal(raised[0]!.msgId, "alert.consecutive_failures.wechat.14", "named by the fact that crossed the line");
  t.same(r.observe(fail("s5"), T0 + 5), [], "fifth failure inside the window: nothing");
  t.same(r.observe(fail("s6"), T0 + 10 * MIN - 1), [], "still inside the window");
  t.equal(r.observe(fail("s7"), T0 + 10 * MIN + 4).length, 1, "the outage goes on past the window: one more alert");
});

t.test("alerts - a delivery ends the streak; channels are independent", async (t) => {
  const r = rules();
  for (const id of ["a", "b", "c"]) r.observe(fail(id), T0);
  r.observe(sent("ok"), T0);
  t.equal(r.streak("wechat"), 0);
  t.same([1, 2, 3].flatMap((i) => r.observe(fail(`d${i}`), T0)), [], "three after the reset: no alert");
  t.same([1, 2, 3, 4].flatMap((i) => r.observe(fail(`e${i}`, "sms"), T0)).length, 1, "sms has its own streak");
  t.equal(r.observe(fail("d4"), T0).length, 1, "wechat's fourth in a row");
});

t.test("alerts - the same send_id twice is one failure", async (t) => {
  const r = rules();
  for (const id of ["a", "b", "c", "c", "c"]) r.observe(fail(id), T0);
  t.equal(r.streak("wechat"), 3);
  t.same(r.observe(fail("a"), T0), [], "a re-published fact does not cross the line");
});

t.test("alerts - threshold 0 alerts on any failure, still once per window", async (t) => {
  const r = rules({ consecutiveFailures: 0 });
  t.equal(r.observe(fail("a"), T0).length, 1);
  t.same(r.observe(fail("b"), T0 + 1), []);
});

t.test("alerts - alerts published elsewhere start the window", async (t) => {
  const r = rules();
  const other: AlertFact = { kind: "consecutive_failures", channel: "wechat", message: "m", value: 4, threshold: 3, at: new Date(T0).toISOString() };
  r.observe({ kind: "alert", alert: other }, T0);
  t.ok(r.suppressed("consecutive_failures", "wechat", T0 + MIN));
  t.same([1, 2, 3, 4].flatMap((i) => r.observe(fail(`s${i}`), T0 + MIN)), [], "another replica (or an earlier run) already alerted");
  t.notOk(r.suppressed("consecutive_failures", "sms", T0), "other channels are not affected");
});

t.test("alerts - replaying history is quiet; evaluate raises what is still due", async (t) => {
  const r = rules();
  for (const i of [1, 2, 3, 4, 5]) t.same(r.observe(fail(`s${i}`, "wechat", i), T0, true), [], "quiet while catching up");
  const due = r.evaluate(T0);
  t.equal(due.length, 1);
  t.equal(due[0]!.fact.value, 5);
  t.same(r.evaluate(T0 + 1), [], "not twice");

  const r2 = rules();
  for (const i of [1, 2, 3, 4]) r2.observe(fail(`s${i}`, "wechat", i), T0, true);
  r2.observe({ kind: "alert", alert: { kind: "consecutive_failures", channel: "wechat", message: "", value: 4, threshold: 3, at: new Date(T0).toISOString() } }, T0, true);
  t.same(r2.evaluate(T0 + 1), [], "the history already holds the alert");
});

t.test("alerts - DLQ depth above the threshold alerts once per window", async (t) => {
  const r = rules({ dlqDepthThreshold: 10 });
  t.equal(r.dlqDepth(10, T0), null, "at the threshold: no alert");
  const a = r.dlqDepth(11, T0);
  t.match(a?.fact, { kind: "dlq_depth", channel: "all", value: 11, threshold: 10 });
  t.equal(r.dlqDepth(50, T0 + MIN), null, "inside the window");
  t.ok(r.dlqDepth(50, T0 + 11 * MIN), "after the window");
});

t.test("alerts - facts are read from notification.> subjects", async (t) => {
  const rec = (o: Record<string, unknown>) => encodeJson({ send_id: "s1", channel: "wechat", ...o });
  t.match(toObservation(Subjects.dead, rec({ status: "dead" }), 7), { kind: "failure", channel: "wechat", send_id: "s1", seq: 7 });
  t.match(toObservation(Subjects.failed, rec({ reason: FailReason.permanent })), { kind: "failure" });
  t.match(toObservation(Subjects.failed, rec({ reason: FailReason.schema })), { kind: "ignored" }, "content failures are not channel failures");
  t.match(toObservation(Subjects.failed, rec({ reason: FailReason.render })), { kind: "ignored" });
  t.match(toObservation(Subjects.sent, rec({})), { kind: "sent" });
  t.match(toObservation(Subjects.alert, encodeJson({ kind: "quota_exceeded", channel: "wechat", at: new Date().toISOString() })), { kind: "alert" });
  t.match(toObservation(Subjects.dead, new TextEncoder().encode("{nope")), { kind: "ignored" });
  t.match(toObservation(Subjects.dead, encodeJson({ channel: "wechat" })), { kind: "ignored" }, "no send_id");
  t.match(toObservation("notification.other", rec({})), { kind: "ignored" });
});

t.test("alerts - webhook backoff doubles and is capped; only the origin is shown", async (t) => {
  t.same([1, 2, 3, 4, 5].map((i) => backoffDelay(i, { baseMs: 1000, maxMs: 5000, jitter: 0 })), [1000, 2000, 4000, 5000, 5000], "the shared back-off, without jitter");
  t.equal(webhookOrigin("https://hooks.example.com/services/T0/B0/secret?key=k"), "https://hooks.example.com");
  t.equal(webhookOrigin("not a url"), "[invalid url]");
});

t.test("alerts - a webhook 4xx is not retried; close() is idempotent", async (t) => {
  const hook = await startWebhookServer(() => 400);
  t.teardown(() => hook.close());
  const logs = captureLogger();
  const outcomes: string[] = [];
  const w = new AlertWebhook({ url: `${hook.url}/x`, timeoutMs: 1000, retries: 3, backoffMs: 10, log: logs.log, onOutcome: (o) => outcomes.push(o) });
  w.enqueue({ kind: "dlq_depth", channel: "all", message: "m", value: 1, threshold: 0, at: new Date().toISOString() });
  await w.idle();
  t.equal(hook.requests.length, 1, "a client error is final");
  t.same(outcomes, ["failed"]);
  await Promise.all([w.close(), w.close()]);
  w.enqueue({ kind: "dlq_depth", channel: "all", message: "m", value: 1, threshold: 0, at: new Date().toISOString() });
  t.equal(w.pending, 0, "closed: nothing queued");
});

t.test("alerts - config defaults (the schema, one layer), and errors name the variable without echoing the URL", async (t) => {
  const schema = Type.Object(AlertingEnv);
  const c = loadConfig(schema, {});
  t.equal(c.DLQ_ALERT_THRESHOLD, 100);
  t.equal(c.ALERT_CONSECUTIVE_FAILURES, 3);
  t.equal(c.ALERT_DEDUP_WINDOW_MS, 600_000);
  const s = alertingSettings(c);
  t.equal(s.webhook, null, "no webhook unless configured");
  t.equal(s.lookbackMs, undefined, "look-back unset: the alerting unit uses one dedup window");
  t.equal(alertingSettings(loadConfig(schema, { ALERT_LOOKBACK_MS: "5000" })).lookbackMs, 5000);
  const w = alertingSettings(loadConfig(schema, { ALERT_WEBHOOK_URL: "https://hooks.example.com/x?key=k", ALERT_WEBHOOK_RETRIES: "5" }));
  t.match(w.webhook, { url: "https://hooks.example.com/x?key=k", retries: 5, timeoutMs: 5000 });
  for (const bad of ["ftp://x/secretpath", "https://", "hooks.example.com/secretpath", "https://a b/secretpath"]) {
    const err = (() => {
      try {
        loadConfig(schema, { DLQ_ALERT_THRESHOLD: "lots", ALERT_WEBHOOK_URL: bad });
      } catch (e) {
        return e;
      }
    })();
    t.ok(err instanceof ConfigError, bad);
    t.same([...(err as ConfigError).variables].sort(), ["ALERT_WEBHOOK_URL", "DLQ_ALERT_THRESHOLD"], "the pattern runs");
    t.match((err as Error).message, /ALERT_WEBHOOK_URL: must be an http\(s\) URL/);
    t.notMatch((err as Error).message, "secretpath", "the value is never echoed");
  }
});
