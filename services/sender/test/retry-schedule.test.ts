import t from "tap";
import { Status, Streams } from "@notify/contracts";
import { createDlqMonitor } from "@notify/dlq-monitor";
import { readDlqMeta } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { paidEvent, paidTemplate } from "../../../test/support/fixtures.js";
import { serverBinaries } from "../../../test/support/servers.js";
import { Stack } from "../../../test/support/stack.js";
import { waitFor } from "../../../test/support/wait.js";

const BASE_MS = 100;
const JITTER = 0.1;
/**
 * Slack for handling (a WeChat call, a record write) on a shared, busy machine. The old
 * consumer backoff added 15 s and more per retry with the defaults, seconds with small
 * values: a window this size still tells the two apart.
 */
const SLACK_MS = 750;

/**
 * The schedule an operator configures is the schedule that happens, on every supported
 * server: RETRY_BASE_MS=100 and a WeChat that always answers -1 give five calls at about
 * 0, 0.1, 0.3, 0.7 and 1.5 s, then `dead` with the job in the DLQ.
 */
for (const { binary, version } of serverBinaries()) {
  t.test(`retry schedule - RETRY_BASE_MS=100, errcode -1 every time: five calls at ~0, .1, .3, .7, 1.5 s, then dead and in the DLQ (nats-server ${version})`, async (t) => {
    const server = await NatsServer.start({ binary });
    t.teardown(() => server.stop());
    const stack = await Stack.start({ server, senders: 1, retryBaseMs: BASE_MS, retryJitter: JITTER });
    t.teardown(() => stack.close());
    const monitor = createDlqMonitor({ nc: stack.nc, log: stack.log.child({ actor: "dlq-monitor" }) });
    await monitor.start();
    t.teardown(() => monitor.close());
    await stack.putTemplate(paidTemplate());
    stack.sim.setFault({ kind: "errcode", errcode: -1 });

    const e = paidEvent();
    await stack.publish(e);
    const dead = await stack.waitStatus(e, Status.dead, 15_000);

    const tries = (await stack.records.history(stack.sendId(e))).filter((r) => r.status === Status.retrying);
    t.same(tries.map((r) => r.attempts), [1, 2, 3, 4, 5], "one retrying record per attempt");
    t.equal(stack.sim.stats().sendCalls, 5, "WeChat was called exactly five times");
    const at = tries.map((r) => Date.parse(r.updated_at));
    t.comment(`nats-server ${version}: attempts at ${at.map((x) => ((x - at[0]!) / 1000).toFixed(3)).join(", ")} s`);
    for (let n = 1; n <= 4; n++) {
      const r = tries[n - 1]!;
      const chosen = Date.parse(r.next_attempt_at!) - at[n - 1]!;
      const exp = BASE_MS * 2 ** (n - 1);
      t.ok(chosen >= Math.floor(exp * (1 - JITTER)) && chosen <= Math.ceil(exp * (1 + JITTER)), `attempt ${n} waits ${chosen} ms: ${exp} ms ± ${JITTER * 100}%`);
      const gap = at[n]! - at[n - 1]!;
      t.ok(gap >= chosen - 5 && gap <= chosen + SLACK_MS, `attempt ${n + 1} came ${gap} ms after attempt ${n} (next_attempt_at said ${chosen} ms)`);
    }
    t.equal(tries[4]!.next_attempt_at, undefined, "the last attempt promises no next one");
    t.equal(dead.attempts, 5);
    t.equal(dead.next_attempt_at, undefined, "a dead record has no next attempt");

    const dlq = await waitFor(async () => {
      const si = await stack.jsm.streams.info(Streams.dlq);
      if (!si.state.messages) return null;
      const m = await stack.jsm.streams.getMessage(Streams.dlq, { seq: si.state.last_seq });
      return m ? readDlqMeta(m.header) : null;
    }, "the job in the DLQ", 5000);
    t.equal(dlq.send_id, dead.send_id, "the job is in the DLQ");
    t.equal(dlq.attempts, 5);
    // The whole story fits in a few seconds (it took minutes with the consumer backoff).
    t.ok(Date.parse(dead.updated_at) - at[0]! < 6000, `dead ${Date.parse(dead.updated_at) - at[0]!} ms after the first attempt`);
  });
}
