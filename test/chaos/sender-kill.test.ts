import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { Status } from "@notify/contracts";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import type { ServiceProcess } from "../support/processes.js";
import {
  deliveredShare,
  putTemplate,
  readRecords,
  sendIdOf,
  statusCounts,
  stopwatch,
  summaryLine,
  tally,
  waitDelivered,
  waitSendsEmpty,
  workerEnv,
  chaosBed,
} from "../support/chaos.js";

const EVENTS = 2000;
const KILL_EVERY_MS = 300;

t.test("chaos - sender processes killed with SIGKILL mid-flight: every key delivered exactly once", async (t) => {
  const { server, topo, records, js, sim, procs } = await chaosBed(t);
  // WeChat latency keeps calls in flight long enough for a kill to land mid-call.
  sim.setFault({ kind: "latency", ms: 150 });
  await putTemplate(topo.buckets.templates, paidTemplate());

  const env = workerEnv(server.url, sim, { SENDER_CONCURRENCY: "16" });
  await procs.startReady("dispatcher", env);
  const slots: ServiceProcess[] = await Promise.all(["sender-a", "sender-b"].map((l) => procs.startReady("sender", env, l)));
  const ready = new WeakSet<ServiceProcess>(slots);
  const killed = new Set<ServiceProcess>();

  const events = Array.from({ length: EVENTS }, () => paidEvent());
  const elapsed = stopwatch();
  await Promise.all(events.map((e) => js.publish(`events.${e.event}`, JSON.stringify(e), { msgID: e.id })));

  const progress: number[] = [];
  const sampler = setInterval(() => progress.push(sim.messages.length), 2000);
  t.teardown(() => clearInterval(sampler));
  // Every few hundred ms kill one sender (alternating) and start a replacement at once.
  // A slot is only killed once its process is up and consuming, and only while the other
  // one is up too: the pool loses a replica mid-flight, never all of them at once.
  let chaos = true;
  let kills = 0;
  let restartMs = 0;
  const loop = (async () => {
    for (let i = 0; chaos; i++) {
      await sleep(KILL_EVERY_MS);
      const slot = i % slots.length;
      const victim = slots[slot]!;
      if (!chaos || !slots.every((p) => ready.has(p))) continue;
      killed.add(victim);
      await victim.kill("SIGKILL");
      kills++;
      const startedAt = Date.now();
      const next = procs.start("sender", env, `sender-${slot}-${kills}`);
      slots[slot] = next;
      void next.ready().then(() => {
        ready.add(next);
        restartMs = Math.max(restartMs, Date.now() - startedAt);
      }, () => undefined);
    }
  })();
  // Keep killing while most of the work is still ahead; then let the rest drain.
  const chaosUntil = Date.now() + 20_000;
  while (deliveredShare(sim, events) < 0.95 && Date.now() < chaosUntil) await sleep(100);
  chaos = false;
  await loop;
  const chaosMs = elapsed();

  await waitDelivered(sim, events, 90_000);
  const deliveredMs = elapsed();
  // Jobs that a killed sender held come back after their ack wait: wait until none is left,
  // so a late redelivery would have had its chance to send twice.
  await waitSendsEmpty(topo.jsm, 60_000, records);
  const recs = await readRecords(records, events.map((e) => sendIdOf(e)));
  const counts = statusCounts(recs);
  const result = tally(sim, events);
  const stats = sim.stats();
  t.comment(
    summaryLine("sender-killed-mid-flight", result, deliveredMs, {
      kills,
      chaos_s: (chaosMs / 1000).toFixed(1),
      wechat_dedup_hits: stats.duplicates,
      max_restart_ms: restartMs,
    }),
  );
  t.comment(`delivered every 2 s: ${progress.join(" ")}`);

  // The cadence is bounded by how fast a replacement starts consuming (1.5-7 s under load).
  t.ok(kills >= 2, `senders were killed repeatedly while working (${kills} kills)`);
  t.equal(result.delivered, EVENTS, "every business key delivered");
  t.equal(result.lost, 0, "nothing lost");
  t.equal(result.duplicated, 0, "nothing delivered twice (by client_msg_id and by openid)");
  t.equal(sim.messages.length, EVENTS, "the simulator holds exactly one message per event");
  t.same(counts, { [Status.success]: EVENTS }, "every record is success");
  t.same(procs.unexpectedExits(killed).map((p) => p.name), [], "no process died that the test did not kill");
});
