import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { Buckets, Consumers, Status, Streams } from "@notify/contracts";
import { createDlqMonitor } from "@notify/dlq-monitor";
import { SENDER_MAX_ATTEMPTS, errorDelay } from "@notify/nats";
import { paidEvent, paidTemplate } from "../../../test/support/fixtures.js";
import { Stack } from "../../../test/support/stack.js";
import { waitFor } from "../../../test/support/wait.js";

const JOBS = 20;
/** Longer than five redeliveries one second apart: what used to exhaust a job's deliveries. */
const OUTAGE_MS = 12_000;

t.test("infrastructure error delay - doubles per delivery from the base, capped", async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 50].map((n) => errorDelay(n, 1000, 30_000)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  t.equal(errorDelay(7, 1000), 1000, "fixed without a cap (the other actors)");
});

/**
 * The record bucket takes no writes for 12 s (its stream no longer listens on the record
 * subjects, as when its leader is cut off and no new one is elected yet; reads still
 * answer) while the sender holds 20 jobs. Each delivery fails on our infrastructure: the
 * record write after the call throws. The server's max_deliver of 5 with a 1 s redelivery
 * used to be spent in five seconds and the jobs went dead (or were lost) although WeChat
 * never failed. Now such deliveries count nothing and back off; every job is delivered
 * exactly once once writes work, and called once: the replica keeps the answer whose record
 * write failed and records it on the redelivery instead of calling WeChat again.
 */
t.test("records outage - 12 s of KV errors while jobs are in hand: every job delivered exactly once, none dead", async (t) => {
  const stack = await Stack.start({ senders: 0, retryBaseMs: 100 });
  t.teardown(() => stack.close());
  const monitor = createDlqMonitor({ nc: stack.nc, log: stack.log.child({ actor: "dlq-monitor" }) });
  await monitor.start();
  t.teardown(() => monitor.close());
  await stack.putTemplate(paidTemplate());
  const events = Array.from({ length: JOBS }, () => paidEvent());
  for (const e of events) await stack.publish(e);
  await waitFor(async () => (await stack.jsm.streams.info(Streams.sends)).state.messages === JOBS, "every job queued in SENDS");

  const kvStream = `KV_${Buckets.records}`;
  const { config } = await stack.jsm.streams.info(kvStream);
  await stack.jsm.streams.update(kvStream, { ...config, subjects: ["$KV.records-outage.>"], allow_direct: false });
  await stack.addSender();
  await sleep(OUTAGE_MS);
  const during = await stack.jsm.consumers.info(Streams.sends, Consumers.sender("wechat"));
  await stack.jsm.streams.update(kvStream, config);

  const recs = await Promise.all(events.map((e) => stack.waitStatus(e, [Status.success, Status.dead, Status.failed], 60_000)));
  const after = await stack.jsm.consumers.info(Streams.sends, Consumers.sender("wechat"));
  t.comment(`${after.delivered.consumer_seq} deliveries for ${JOBS} jobs (${during.delivered.consumer_seq} during the outage, back-off 1, 2, 4, 8 s); ${stack.sim.stats().sendCalls} WeChat calls`);
  t.equal(during.num_redelivered, JOBS, "every job was redelivered during the outage");
  t.ok(after.delivered.consumer_seq >= JOBS * SENDER_MAX_ATTEMPTS, `each job took at least ${SENDER_MAX_ATTEMPTS} deliveries (${after.delivered.consumer_seq}): the old max_deliver`);
  t.same(
    recs.map((r) => r.status),
    events.map(() => Status.success),
    "every record success",
  );
  for (const e of events) t.equal(stack.sim.deliveriesFor(stack.sendId(e)).length, 1, `${stack.sendId(e)} delivered once`);
  t.equal((await stack.jsm.streams.info(Streams.dlq)).state.messages, 0, "nothing in the DLQ");
  t.equal(stack.sim.stats().sendCalls, JOBS, "one WeChat call per job: each redelivery recorded the answer its replica had, without calling again");
  t.ok(recs.every((r) => (r.attempts ?? 0) <= 2), `attempts count calls, not deliveries (${[...new Set(recs.map((r) => r.attempts))].join(", ")})`);
});
