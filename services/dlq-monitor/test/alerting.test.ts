import t, { type Test } from "tap";
import { FailReason, Subjects, encodeJson, type AlertFact } from "@notify/contracts";
import { publishToDlq } from "@notify/nats";
import { jetstream } from "@nats-io/jetstream";
import { createMetrics } from "@notify/metrics";
import { createProviderAlert } from "@notify/alerting";
import { createDlqMonitor, type DlqMonitor, type DlqMonitorSettings } from "@notify/dlq-monitor";
import { alertFacts, captureLogger, counterValue, failJobs, queueJob, startEnv, startWebhookServer, waitFor, type Env } from "../test-support/helpers.js";

// Chat webhooks carry their secret in the path or the query: neither may reach a log line.
const HOOK_PATH_SECRET = "T0SECRET/B0SECRET/hookpathsecret123";
const HOOK_QUERY_SECRET = "hookquerysecret456";
const hookUrl = (base: string) => `${base}/services/${HOOK_PATH_SECRET}?key=${HOOK_QUERY_SECRET}`;

interface Harness {
  monitor: DlqMonitor;
  alerts: AlertFact[];
  logs: ReturnType<typeof captureLogger>;
}

async function env(t: Test, channels = ["wechat"]): Promise<Env> {
  const e = await startEnv(channels);
  t.teardown(() => e.close());
  return e;
}

async function startMonitor(t: Test, e: Env, settings: Partial<DlqMonitorSettings>): Promise<Harness> {
  const logs = captureLogger();
  const alerts: AlertFact[] = [];
  const monitor = createDlqMonitor({ nc: e.nc, log: logs.log, settings: { dlqAlertThreshold: 1000, ...settings }, onAlert: (a) => alerts.push(a) });
  t.teardown(() => monitor.close());
  await monitor.start();
  await monitor.alertsLive();
  return { monitor, alerts, logs };
}

function assertNoSecrets(t: Test, text: string) {
  t.notMatch(text, HOOK_PATH_SECRET, "logs hold no webhook path secret");
  t.notMatch(text, "hookpathsecret123", "logs hold no webhook path secret");
  t.notMatch(text, HOOK_QUERY_SECRET, "logs hold no webhook query secret");
}

t.test("dlq-monitor - four consecutive failures raise one alert event and one webhook call", async (t) => {
  const e = await env(t);
  const hook = await startWebhookServer();
  t.teardown(() => hook.close());
  const h = await startMonitor(t, e, { consecutiveFailures: 3, webhook: { url: hookUrl(hook.url), timeoutMs: 2000, retries: 3, backoffMs: 50 } });

  const jobs = await Promise.all([1, 2, 3, 4].map(() => queueJob(e, "wechat")));
  await failJobs(e, "wechat", jobs);
  await waitFor(() => h.monitor.rules!.streak("wechat") === 4, "four failures in the streak");
  await waitFor(() => hook.requests.length >= 1, "webhook called");
  await h.monitor.webhook!.idle();

  const facts = await alertFacts(e.jsm, "consecutive_failures", "wechat");
  t.equal(facts.length, 1, "one alert fact on notification.alert");
  t.match(facts[0], { kind: "consecutive_failures", channel: "wechat", value: 4, threshold: 3 });
  t.equal(h.alerts.length, 1, "one alert raised");
  t.equal(hook.requests.length, 1, "one webhook call, not four");
  const call = hook.requests[0]!;
  t.equal(call.method, "POST");
  t.equal(call.url, `/services/${HOOK_PATH_SECRET}?key=${HOOK_QUERY_SECRET}`, "POSTed to the configured URL");
  t.same(JSON.parse(call.body), facts[0], "the body is the alert fact");
  t.equal(await counterValue(h.monitor.metrics.registry, "notifications_alerts_total", { kind: "consecutive_failures", channel: "wechat" }), 1);
  t.equal(await counterValue(h.monitor.metrics.registry, "notifications_alert_webhook_total", { outcome: "delivered" }), 1);
  t.equal(h.logs.lines().filter((l) => l.includes('"level":"error"') && l.includes("consecutive_failures")).length, 1, "logged at error once");

  // A fifth failure in the same window: still one alert.
  const fifth = await queueJob(e, "wechat");
  await failJobs(e, "wechat", [fifth]);
  await waitFor(() => h.monitor.rules!.streak("wechat") === 5, "fifth failure in the streak");
  await h.monitor.webhook!.idle();
  t.equal((await alertFacts(e.jsm, "consecutive_failures", "wechat")).length, 1, "de-duplicated within the window");
  t.equal(hook.requests.length, 1, "no second webhook call");

  // A delivery on the channel ends the streak.
  await e.js.publish(Subjects.sent, encodeJson({ send_id: "snd_ok", channel: "wechat", attempts: 1 }), { msgID: "sent.snd_ok" });
  await waitFor(() => h.monitor.rules!.streak("wechat") === 0, "streak reset by notification.sent");
  assertNoSecrets(t, h.logs.text());
});

t.test("dlq-monitor - webhook failures are retried, then given up, without blocking the monitor", async (t) => {
  const e = await env(t);
  // The webhook never answers: every attempt runs into the time-out.
  const hook = await startWebhookServer(() => null);
  t.teardown(() => hook.close());
  const h = await startMonitor(t, e, { consecutiveFailures: 0, webhook: { url: hookUrl(hook.url), timeoutMs: 3000, retries: 1, backoffMs: 500 } });

  const first = await queueJob(e, "wechat");
  await failJobs(e, "wechat", [first]);
  await waitFor(() => hook.requests.length === 1, "first webhook attempt under way");

  // The advisory loop goes on while the webhook hangs.
  const second = await queueJob(e, "wechat");
  await failJobs(e, "wechat", [second]);
  await waitFor(async () => (await e.records.get(second.job.send_id))?.record.status === "dead", "second job dead-lettered");
  t.ok(h.monitor.webhook!.pending > 0, "the webhook is still retrying the first alert meanwhile");
  t.ok(hook.requests.length <= 2, "and has not given up yet");

  await h.monitor.webhook!.idle();
  t.equal(hook.requests.length, 2, "one attempt plus one retry");
  t.ok(hook.requests[1]!.at - hook.requests[0]!.at >= 3000 + 500 - 50, "retried after the time-out and the backoff");
  t.equal(await counterValue(h.monitor.metrics.registry, "notifications_alert_webhook_total", { outcome: "failed" }), 1, "counted as failed");
  t.ok(h.logs.lines().some((l) => l.includes("alert webhook failed: giving up") && l.includes("timed out")), "giving up is logged");
  t.ok(h.logs.lines().some((l) => l.includes("alert webhook failed: retrying")), "the retry is logged");
  t.equal(h.alerts.length, 1, "the second failure fell in the same window: one alert");
  assertNoSecrets(t, h.logs.text());
});

t.test("dlq-monitor - DLQ depth above the threshold raises one alert, also across a restart", async (t) => {
  const e = await env(t);
  let calls = 0;
  // Two server errors, then accepted: delivered on the third attempt.
  const hook = await startWebhookServer(() => (++calls <= 2 ? 503 : 204));
  t.teardown(() => hook.close());
  for (let i = 0; i < 3; i++) {
    const q = await queueJob(e, "wechat");
    await publishToDlq(e.js, q.job, { send_id: q.job.send_id, attempts: 1, last_error: "43004: user refused", reason: FailReason.permanent });
  }
  const settings = { dlqAlertThreshold: 2, webhook: { url: hookUrl(hook.url), timeoutMs: 2000, retries: 3, backoffMs: 50 } };
  const first = await startMonitor(t, e, settings);
  await waitFor(() => first.alerts.length === 1, "dlq_depth alert at start");
  await first.monitor.webhook!.idle();
  t.match(first.alerts[0], { kind: "dlq_depth", channel: "all", value: 3, threshold: 2 });
  t.equal(hook.requests.length, 3, "503, 503, then delivered");
  t.equal(await counterValue(first.monitor.metrics.registry, "notifications_alert_webhook_total", { outcome: "delivered" }), 1);
  t.equal(await first.monitor.checkDlqDepth(), 3, "depth measured");
  t.equal(first.alerts.length, 1, "checked again: still one alert (window)");
  const gauge = (await first.monitor.metrics.registry.getSingleMetricAsString("notifications_dlq_depth"));
  t.match(gauge, /notifications_dlq_depth\{[^}]*\} 3/, "dlq depth gauge");
  await first.monitor.close();

  // A new process reads the alert back from NOTIFICATIONS: the window holds across restarts.
  const second = await startMonitor(t, e, settings);
  t.equal(await second.monitor.checkDlqDepth(), 3);
  t.equal(second.alerts.length, 0, "no second alert after the restart");
  t.equal((await alertFacts(e.jsm, "dlq_depth")).length, 1, "one dlq_depth fact in all");
  t.equal(hook.requests.length, 3, "no further webhook call");
  assertNoSecrets(t, first.logs.text() + second.logs.text());
});

t.test("dlq-monitor - the failure streak survives a restart", async (t) => {
  const e = await env(t);
  const a = await startMonitor(t, e, { consecutiveFailures: 3 });
  const jobs = await Promise.all([1, 2, 3].map(() => queueJob(e, "wechat")));
  await failJobs(e, "wechat", jobs);
  await waitFor(() => a.monitor.rules!.streak("wechat") === 3, "three failures");
  t.equal(a.alerts.length, 0, "three is not more than three");
  await a.monitor.close();

  const b = await startMonitor(t, e, { consecutiveFailures: 3 });
  t.equal(b.monitor.rules!.streak("wechat"), 3, "streak rebuilt from the facts");
  const fourth = await queueJob(e, "wechat");
  await failJobs(e, "wechat", [fourth]);
  await waitFor(() => b.alerts.length === 1, "alert on the fourth failure");
  t.match(b.alerts[0], { kind: "consecutive_failures", value: 4 });
  t.equal((await alertFacts(e.jsm, "consecutive_failures")).length, 1);
});

t.test("dlq-monitor - replicas deciding the same alert publish it once", async (t) => {
  const e = await env(t);
  const hook = await startWebhookServer();
  t.teardown(() => hook.close());
  const webhook = { url: hookUrl(hook.url), timeoutMs: 2000, retries: 0, backoffMs: 50 };
  // Two replicas share the advisory consumer; each sees every fact.
  const r1 = await startMonitor(t, e, { consecutiveFailures: 1, webhook });
  const r2 = await startMonitor(t, e, { consecutiveFailures: 1, webhook });
  const jobs = await Promise.all([1, 2].map(() => queueJob(e, "wechat")));
  await failJobs(e, "wechat", jobs);
  await waitFor(() => r1.monitor.rules!.streak("wechat") === 2 && r2.monitor.rules!.streak("wechat") === 2, "both replicas saw both failures");
  await r1.monitor.webhook!.idle();
  await r2.monitor.webhook!.idle();
  t.equal((await alertFacts(e.jsm, "consecutive_failures")).length, 1, "one alert fact");
  t.equal(r1.alerts.length + r2.alerts.length, 1, "raised by one replica");
  t.equal(hook.requests.length, 1, "one webhook call");
});

t.test("dlq-monitor - a sender's quota alert reaches the operator's webhook once", async (t) => {
  const e = await env(t);
  const hook = await startWebhookServer();
  t.teardown(() => hook.close());
  const h = await startMonitor(t, e, { webhook: { url: hookUrl(hook.url), timeoutMs: 2000, retries: 0, backoffMs: 50 } });
  // Two sender replicas hit 45009 in the same window: one fact on the stream, one webhook call.
  const senderLogs = captureLogger("sender");
  const replicas = [0, 1].map(() => createProviderAlert({ js: jetstream(e.nc), log: senderLogs.log, metrics: createMetrics("sender") }));
  for (const raise of replicas) raise("quota_exceeded", "wechat", "45009: reach max api daily quota limit");
  await waitFor(() => hook.requests.length >= 1, "webhook called");
  await waitFor(async () => (await alertFacts(e.jsm, "quota_exceeded")).length === 1, "one fact stored");
  await h.monitor.webhook!.idle();
  t.equal(hook.requests.length, 1, "one webhook call for the window");
  t.match(JSON.parse(hook.requests[0]!.body), { kind: "quota_exceeded", channel: "wechat" }, "the webhook carries the sender's alert");
  t.equal(h.alerts.length, 0, "the monitor raised nothing of its own");
  assertNoSecrets(t, h.logs.text());
});
