import t, { type Test } from "tap";
import fc from "fast-check";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { FaultKind, startSimulator } from "@notify/wechat-simulator";
import { KvRefreshBudget, TOKEN_REFRESH_BUDGET_CODE, WeChatClient, decideRefreshBudget, wechatDay, type SendResult } from "@notify/wechat";

const SECRET = "budget-secret-17";
const server = await NatsServer.start();
t.teardown(() => server.stop());
const nc = await connect({ servers: server.url, noAsyncTraces: true });
t.teardown(() => nc.close());
const { buckets } = await ensureTopology(nc);
let apps = 0;

t.test("refresh budget - one per interval, a daily cap, the count resets at WeChat's midnight (UTC+8)", async (t) => {
  const limits = { minIntervalMs: 30_000, dailyCap: 3 };
  const t0 = Date.parse("2026-12-01T10:00:00Z"); // 18:00 in Beijing
  let state = decideRefreshBudget(null, t0, limits).next!;
  t.same(state, { day: "2026-12-01", count: 1, last_at: t0 });
  t.match(decideRefreshBudget(state, t0 + 29_999, limits).decision, { ok: false, reason: "interval", retryAfterMs: 1 });
  state = decideRefreshBudget(state, t0 + 30_000, limits).next!;
  state = decideRefreshBudget(state, t0 + 60_000, limits).next!;
  t.equal(state.count, 3);
  const spent = decideRefreshBudget(state, t0 + 90_000, limits).decision;
  t.match(spent, { ok: false, reason: "daily_cap" });
  t.equal(t0 + 90_000 + (spent as { retryAfterMs: number }).retryAfterMs, Date.parse("2026-12-01T16:00:00Z"), "until midnight in Beijing");
  t.same(decideRefreshBudget(state, Date.parse("2026-12-01T16:00:00Z"), limits).next, { day: "2026-12-02", count: 1, last_at: Date.parse("2026-12-01T16:00:00Z") });
  t.equal(wechatDay(Date.parse("2026-12-01T15:59:59Z")), "2026-12-01");
});

t.test("refresh budget - property: any sequence of takes keeps the spacing and the daily cap", async () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 6 * 3600_000 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: 19 }), (steps, cap) => {
      const limits = { minIntervalMs: 30_000, dailyCap: cap };
      let now = Date.parse("2026-12-01T00:00:00Z");
      let state = null;
      const granted: number[] = [];
      for (const s of steps) {
        now += s;
        const { decision, next } = decideRefreshBudget(state, now, limits);
        if (decision.ok) {
          granted.push(now);
          state = next!;
        } else if (decision.retryAfterMs <= 0) return false;
      }
      const spaced = granted.every((g, i) => i === 0 || g - granted[i - 1]! >= 30_000);
      const perDay = new Map<string, number>();
      for (const g of granted) perDay.set(wechatDay(g), (perDay.get(wechatDay(g)) ?? 0) + 1);
      return spaced && [...perDay.values()].every((n) => n <= cap);
    }),
    { numRuns: 1000 },
  );
});

t.test("refresh budget - replicas racing on KV spend each slot once", async (t) => {
  const appId = `wx-race-${process.pid}`;
  const budgets = Array.from({ length: 6 }, () => new KvRefreshBudget(buckets.tokens, appId, { minIntervalMs: 60_000, dailyCap: 15 }));
  const ds = await Promise.all(budgets.map((b) => b.take()));
  t.equal(ds.filter((d) => d.ok).length, 1, "six replicas at once: one forced refresh");
  t.ok(ds.filter((d) => !d.ok).every((d) => !d.ok && d.reason === "interval"));
});

/** Two sender replicas (clients) sharing the token bucket, against a WeChat that answers 40001 to every send. */
async function persistent40001(t: Test, forceRefresh: { minIntervalMs?: number; dailyCap?: number } | undefined, runMs: number) {
  const appId = `wx-budget-${++apps}-${process.pid}`;
  // The client's budget is under test here, so the simulator's own 30 s spacing is off.
  const sim = await startSimulator({ appId, appSecret: SECRET, forceRefreshMinIntervalMs: 0 });
  t.teardown(() => sim.close());
  const clients = ["replica-a", "replica-b"].map((replicaId) => {
    const c = new WeChatClient({ appId, appSecret: SECRET, apiBase: sim.url, tokenBucket: buckets.tokens, timeoutMs: 2000, replicaId, ...(forceRefresh ? { forceRefresh } : {}) });
    t.teardown(() => c.close());
    return c;
  });
  // A live token first, then WeChat refuses it on every send.
  await clients[0]!.sendTemplate({ touser: "o1", template_id: "TPL", client_msg_id: "warm", data: {} });
  sim.setFault({ kind: FaultKind.errcode, errcode: 40001 });
  const results: SendResult[] = [];
  const t0 = Date.now();
  let n = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() - t0 < runMs) {
        results.push(await c.sendTemplate({ touser: "o1", template_id: "TPL", client_msg_id: `s${++n}`, data: {} }));
        await sleep(20);
      }
    }),
  );
  return { sim, results, elapsedMs: Date.now() - t0 };
}

t.test("refresh budget - persistent 40001 with the defaults: one forced refresh, not one per send", async (t) => {
  const { sim, results } = await persistent40001(t, undefined, 3000);
  t.equal(sim.stats().forceRefreshes, 1, "one forced refresh in 3 s across two replicas (the issue saw 9 in 10 s)");
  t.ok(results.length > 20, `${results.length} sends tried`);
  t.ok(results.every((r) => r.kind === "retryable"), "every send is retryable: it waits, nothing is dropped");
  const budget = results.filter((r) => r.kind !== "success" && r.code === TOKEN_REFRESH_BUDGET_CODE);
  t.ok(budget.length >= results.length - 2, "the rest were refused by the budget");
  t.ok(budget.every((r) => r.kind !== "success" && r.retryAfterMs! > 0 && r.retryAfterMs! <= 30_000), "each says when to try again");
});

t.test("refresh budget - a 1 s interval: at most one forced refresh per second across two replicas", async (t) => {
  const { sim, elapsedMs } = await persistent40001(t, { minIntervalMs: 1000, dailyCap: 15 }, 3500);
  const forced = sim.stats().forceRefreshes;
  t.comment(`${forced} forced refreshes in ${elapsedMs} ms`);
  t.ok(forced >= 2, "refreshes do happen once the interval has passed");
  t.ok(forced <= 1 + Math.floor(elapsedMs / 1000), `at most one per second (${forced} in ${elapsedMs} ms)`);
});

t.test("refresh budget - the daily cap: past it, sends are parked like a quota", async (t) => {
  const { sim, results } = await persistent40001(t, { minIntervalMs: 100, dailyCap: 2 }, 1500);
  t.equal(sim.stats().forceRefreshes, 2, "exactly the daily cap");
  const last = results.at(-1)!;
  t.match(last, { kind: "quota", code: TOKEN_REFRESH_BUDGET_CODE });
  t.ok(last.kind !== "success" && last.retryAfterMs! > 0 && last.retryAfterMs! <= 24 * 3600_000, "until WeChat's next day");
});
