import t from "tap";
import { loadSenderConfig, retryDelay, worstCaseRetrySpanMs } from "@notify/sender";

const policy = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };

t.test("sender - retry delay doubles per attempt, with bounded jitter and a cap", async (t) => {
  const mid = () => 0.5;
  t.same([1, 2, 3, 4, 5].map((n) => retryDelay(n, policy, mid)), [1000, 2000, 4000, 8000, 16000]);
  t.equal(retryDelay(1, policy, () => 0), 800, "-20% at the low end");
  t.equal(retryDelay(1, policy, () => 1), 1200, "+20% at the high end");
  t.equal(retryDelay(20, policy, mid), 60_000, "capped");
  const total = [1, 2, 3, 4].reduce((s, n) => s + retryDelay(n, policy, () => 1), 0);
  t.ok(total < 10 * 60_000, "the whole schedule fits in WeChat's 10-minute client_msg_id window");
});

t.test("sender - the worst-case retry schedule, as nats-server runs it, must fit WeChat's window", async (t) => {
  // Defaults: 5 s timeout, backoff 15/30/60/120 s: the ack-wait path dominates each gap.
  t.equal(worstCaseRetrySpanMs(policy, [15_000, 30_000, 60_000, 120_000], 5000, 5), 225_000);
  // A nak after delivery n also waits backoff[n-1] - backoff[0] (measured on 2.9.10).
  t.equal(worstCaseRetrySpanMs({ baseMs: 200, maxMs: 60_000, jitter: 0 }, [1500, 3000, 4500, 6000], 1000, 5), 1500 + 3000 + (1000 + 800 + 3000) + (1000 + 1600 + 4500));
  t.equal(worstCaseRetrySpanMs({ baseMs: 200, maxMs: 60_000, jitter: 0 }, [], 1000, 5), 1200 + 1400 + 1800 + 2600, "without backoff: the naks and the calls");
  t.doesNotThrow(() => loadSenderConfig({}), "the defaults fit");
  t.doesNotThrow(() => loadSenderConfig({ WECHAT_TIMEOUT_MS: "1000", SENDER_ACK_BACKOFF_MS: "1500,3000,4500,6000", RETRY_BASE_MS: "50" }));
  t.throws(() => loadSenderConfig({ WECHAT_TIMEOUT_MS: "20000" }), /WECHAT_TIMEOUT_MS.*900 s.*client_msg_id window/, "a 20 s timeout stretches the default backoff past 10 minutes");
  t.throws(() => loadSenderConfig({ SENDER_ACK_BACKOFF_MS: "60000,120000,240000,300000" }), /SENDER_ACK_BACKOFF_MS/);
});
