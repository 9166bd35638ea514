import t from "tap";
import fc from "fast-check";
import { ConfigError } from "@notify/config";
import { backoffDelay } from "@notify/contracts";
import { loadSenderConfig, retryPolicy, retrySpanBoundMs, senderAckWaitMs } from "@notify/sender";

const policy = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };

t.test("back-off - attempt n waits base·2^(n-1), ± jitter, capped", async (t) => {
  const mid = () => 0.5;
  t.same([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, mid)), [1000, 2000, 4000, 8000, 16000]);
  t.same([1, 2, 3, 4].map((n) => backoffDelay(n, { baseMs: 100, maxMs: 60_000, jitter: 0 })), [100, 200, 400, 800], "RETRY_BASE_MS=100: 0.1, 0.2, 0.4, 0.8 s");
  t.equal(backoffDelay(1, policy, () => 0), 800, "-20% at the low end");
  t.equal(backoffDelay(1, policy, () => 1), 1200, "+20% at the high end");
  t.equal(backoffDelay(20, policy, mid), 60_000, "capped");
  t.equal(backoffDelay(20, policy, () => 0), 48_000, "waits at the cap still spread (downwards)");
  t.equal(backoffDelay(5000, policy, mid), 60_000, "an absurd attempt number is the cap, not NaN");
});

t.test("back-off - property: within [exp·(1-j), exp·(1+j)] ∩ [0, max] for any policy, attempt and random", async () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -5, max: 5000 }),
      fc.integer({ min: 1, max: 10 ** 7 }),
      fc.integer({ min: 1, max: 10 ** 8 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (attempt, baseMs, maxMs, jitter, r) => {
        const d = backoffDelay(attempt, { baseMs, maxMs, jitter }, () => r);
        const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(1, attempt) - 1, 52));
        return Number.isInteger(d) && d >= 0 && d <= maxMs && d >= Math.floor(exp * (1 - jitter)) && d <= Math.ceil(exp * (1 + jitter));
      },
    ),
    { numRuns: 2000 },
  );
});

t.test("sender config - the retry schedule must fit WeChat's client_msg_id window", async (t) => {
  const defaults = loadSenderConfig({});
  t.same(retryPolicy(defaults), policy);
  t.equal(senderAckWaitMs(defaults), 15_000, "ack wait 3× the 5 s WeChat timeout");
  t.equal(senderAckWaitMs(loadSenderConfig({ WECHAT_TIMEOUT_MS: "1000" })), 5000, "at least 5 s");
  // Each gap: at most one ack wait (a call, or a dead sender) plus the longest nak delay.
  t.equal(retrySpanBoundMs(policy, 15_000), 4 * 15_000 + 1200 + 2400 + 4800 + 9600);
  t.ok(retrySpanBoundMs(policy, 15_000) < 10 * 60_000, "the defaults fit the 10-minute window");
  t.doesNotThrow(() => loadSenderConfig({ WECHAT_TIMEOUT_MS: "20000" }), "a 20 s WeChat timeout fits now that naks are not stretched");
  t.throws(() => loadSenderConfig({ RETRY_BASE_MS: "120000", RETRY_MAX_MS: "300000" }), /RETRY_BASE_MS.*client_msg_id window/);
  t.throws(() => loadSenderConfig({ SENDER_ACK_WAIT_MS: "5000", WECHAT_TIMEOUT_MS: "5000" }), /SENDER_ACK_WAIT_MS: must exceed WECHAT_TIMEOUT_MS/);
  const removed = (() => {
    try {
      loadSenderConfig({ SENDER_ACK_BACKOFF_MS: "15000,30000" });
    } catch (err) {
      return err;
    }
  })();
  t.ok(removed instanceof ConfigError, "a removed variable is a clear error, not silently ignored");
  t.same((removed as ConfigError).variables, ["SENDER_ACK_BACKOFF_MS"]);
});
