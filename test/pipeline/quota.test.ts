// WeChat's daily template quota, end to end against the real simulator on a shared,
// injected clock: one replica (a KV lease) reads quota/get into the used / limit gauges
// and alerts at 80 % through the alerting unit; 45009 parks the send until midnight
// Beijing time (a second send is held without a call), the quota_exceeded alert fires,
// and after the reset both are delivered, with no retry burnt.
import t from "tap";
import type { Subscription } from "@nats-io/transport-node";
import { Status, Subjects, decodeJson, type AlertFact } from "@notify/contracts";
import { createWeChatChannel, startSender, QuotaGovernor } from "@notify/sender";
import { nextBeijingMidnight } from "@notify/wechat-simulator";
import { Stack } from "../support/stack.js";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";

t.test("pipeline quota - gauge and 80 % alert, 45009 parks until midnight Beijing time, sends resume after the reset", async (t) => {
  // The clock the sender, its WeChat client and the simulator share; the test moves it.
  let offset = 0;
  const clock = () => Date.now() + offset;
  const stack = await Stack.start({ senders: 0, simulator: { clock, tokenTtlSec: 86_400 } });
  t.teardown(() => stack.close());
  await stack.putTemplate(paidTemplate());
  const sim = stack.sim;
  const sender = await startSender({
    nc: stack.nc,
    log: stack.log,
    metrics: stack.metrics,
    createChannel: ({ buckets }) =>
      createWeChatChannel({ apiBase: sim.url, appId: sim.appId, appSecret: "local-simulator-secret", timeoutMs: 2000, tokens: buckets.tokens, msgids: buckets.msgids, log: stack.log, metrics: stack.metrics, now: clock }),
    concurrency: 1,
    retry: { baseMs: 50, maxMs: 2000, jitter: 0 },
    quotaParkMs: 60_000,
    random: () => 0,
    // Polled by hand below (a long period: the first round only).
    quotaPoll: { intervalMs: 3_600_000, alertShare: 0.8, replicaId: "replica-a" },
    now: clock,
    topology: { senderAckWaitMs: 4000 },
  });
  stack.senders.push(sender);
  const governor = sender.quota!;
  t.ok(governor, "the WeChat sender polls the quota");

  const alerts: AlertFact[] = [];
  const sub: Subscription = stack.nc.subscribe(Subjects.alert, { callback: (_e, m) => void alerts.push(decodeJson<AlertFact>(m.data)) });
  t.teardown(() => sub.unsubscribe());
  await stack.nc.flush();
  const gauge = async () => {
    const read = async (g: typeof stack.metrics.quotaUsed) => (await g.get()).values.find((v) => v.labels.account === sim.appId)?.value;
    return { used: await read(stack.metrics.quotaUsed), limit: await read(stack.metrics.quotaLimit), ratio: await read(stack.metrics.quotaUsage) };
  };
  const counter = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, labels: Record<string, string>) =>
    (await c.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  // The poller's own first round (at start) lands before the test sets the quota.
  await waitFor(async () => (await gauge()).limit !== undefined, "the first quota poll");

  await t.test("the gauge shows used / limit; the alert fires at 80 %", async (t) => {
    sim.quota({ dailyLimit: 10, used: 7 });
    t.match(await governor.tick(), { daily_limit: 10, used: 7, remain: 3 });
    t.same(await gauge(), { used: 7, limit: 10, ratio: 0.7 });
    const e = paidEvent();
    await stack.publish(e);
    await stack.waitStatus(e, Status.success);
    await governor.tick();
    t.same(await gauge(), { used: 8, limit: 10, ratio: 0.8 }, "the send used one");
    await stack.nc.flush();
    const usage = await waitFor(() => alerts.find((a) => a.kind === "quota_usage"), "the quota_usage alert on notification.alert");
    t.match(usage, { channel: "wechat", value: 0.8, threshold: 0.8, message: /8 of 10 daily sends used \(80 %/ });
    t.equal(await counter(stack.metrics.alertsTotal, { kind: "quota_usage" }), 1, "counted by the alerting unit");
  });

  await t.test("45009 parks until midnight Beijing time, the next send is held without a call, both resume after the reset", async (t) => {
    // Six seconds before midnight in Beijing, on the day the quota was read.
    const midnight = nextBeijingMidnight(Date.now() + offset);
    offset = midnight - 6000 - Date.now();
    sim.quota({ used: 10 });
    const rejectedBefore = sim.stats().quotaRejections;
    const retriesBefore = await counter(stack.metrics.retryTotal, { channel: "wechat" });

    const a = paidEvent();
    await stack.publish(a);
    const parked = await stack.waitStatus(a, Status.retrying);
    t.equal(parked.next_attempt_at, new Date(midnight).toISOString(), "parked until midnight Beijing time (16:00 UTC), not QUOTA_PARK_MS");
    t.equal(parked.attempts, 1);
    t.match(parked.last_error, /^45009: WeChat errcode 45009: reach max api daily quota limit/);
    t.equal(sim.stats().quotaRejections, rejectedBefore + 1);

    const b = paidEvent();
    await stack.publish(b);
    const held = await stack.waitStatus(b, Status.retrying);
    t.equal(held.attempts, 0, "no attempt counted: WeChat was not called");
    t.equal(held.next_attempt_at, new Date(midnight).toISOString());
    t.equal(sim.stats().quotaRejections, rejectedBefore + 1, "the held send made no call");
    t.equal(await counter(stack.metrics.quotaParked, { how: "called" }), 1);
    t.equal(await counter(stack.metrics.quotaParked, { how: "held" }), 1);

    await stack.nc.flush();
    t.match(await waitFor(() => alerts.find((x) => x.kind === "quota_exceeded"), "the quota_exceeded alert"), { channel: "wechat", message: /45009/ });
    await governor.tick();
    t.same(await gauge(), { used: 10, limit: 10, ratio: 1 }, "the gauge shows the spent day");

    // The shared clock crosses midnight in Beijing: the simulator's quota resets and the parked copies wake.
    const doneA = await stack.waitStatus(a, Status.success, 60_000);
    const doneB = await stack.waitStatus(b, Status.success, 60_000);
    t.ok(clock() >= midnight, "delivered after the reset");
    t.equal(doneA.attempts, 2, "the 45009 attempt and the send");
    t.equal(doneB.attempts, 1, "one attempt: the send");
    for (const e of [a, b]) {
      t.equal(sim.deliveriesFor(stack.sendId(e)).length, 1, "delivered once");
      t.same((await stack.records.history(stack.sendId(e))).map((r) => r.status), [Status.queued, Status.retrying, Status.success]);
    }
    t.equal(await counter(stack.metrics.retryTotal, { channel: "wechat" }), retriesBefore, "no retry burnt on the quota");
    t.equal(sim.stats().quotaRejections, rejectedBefore + 1, "one 45009 in all");
    await governor.tick();
    t.same(await gauge(), { used: 2, limit: 10, ratio: 0.2 }, "the new day counts from zero");
  });

  await t.test("one replica polls: the KV lease, taken over once it expires", async (t) => {
    const other = new QuotaGovernor({ channel: { name: "wechat", account: sim.appId, send: async () => ({ kind: "success", code: "0" }), quota: async () => ({ daily_limit: 1, used: 0, remain: 1 }), close: async () => {} }, kv: stack.topo.buckets.tokens, replicaId: "replica-b", metrics: stack.metrics, log: stack.log, intervalMs: 3_600_000, now: clock });
    t.equal(await other.lead(), false, "replica-a holds the lease");
    t.equal(await other.tick(), null, "so replica-b reads nothing");
    t.equal(await governor.lead(), true, "the holder renews");
    offset += 3 * 3_600_000 + 1;
    t.equal(await other.lead(), true, "expired: replica-b takes it");
    t.equal(await governor.lead(), false, "and replica-a no longer holds it");
  });
});
