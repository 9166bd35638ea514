import t from "tap";
import { retryDelay } from "@notify/sender";

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
