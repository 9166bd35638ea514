import t from "tap";
import { connect, nanos } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Consumers, Status, Streams, decodeJson, lockKey, type LockValue } from "@notify/contracts";
import { RecordStore, ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { startSimulator } from "@notify/wechat-simulator";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { scrapeCounter, supportScript } from "../support/processes.js";
import { waitFor } from "../support/wait.js";
import { Processes, putTemplate, readRecords, sendIdOf, stopwatch, summaryLine, tally, waitDelivered, waitSendsEmpty, workerEnv } from "../support/chaos.js";

const EVENTS = 20;

t.test("chaos - dispatcher dies between the lock claim and the job publish: each event still delivered once", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  // The dispatcher consumer redelivers an unacked event after 30 s in production; the
  // scenario shortens that wait (the services warn about the difference and go on).
  const ci = await topo.jsm.consumers.info(Streams.events, Consumers.dispatcher);
  await topo.jsm.consumers.update(Streams.events, Consumers.dispatcher, { ...ci.config, ack_wait: nanos(2000) });
  const records = new RecordStore(topo.buckets.records);
  const js = jetstream(nc);
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  await putTemplate(topo.buckets.templates, paidTemplate());

  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const env = workerEnv(server.url, sim);
  await procs.startReady("sender", env);
  const faulty = await procs.startReady("dispatcher", env, "dispatcher-faulty", 30_000, supportScript("dispatcher-exit-after-claim.mjs"));

  const events = Array.from({ length: EVENTS }, () => paidEvent());
  const elapsed = stopwatch();
  await Promise.all(events.map((e) => js.publish(`events.${e.event}`, JSON.stringify(e), { msgID: e.id })));
  const code = await waitFor(async () => (faulty.alive ? null : { code: await faulty.kill() }), "the faulty dispatcher to exit", 20_000);
  t.equal(code.code, 137, "the fault hook ended the process right after a claim");
  t.ok(faulty.lines.some((l) => l.includes("exiting between claim and publish")), "it logged the fault");

  // The crash left at least one claim without a job: a lock, no record, nothing at WeChat.
  const orphans: string[] = [];
  let foreignLocks = 0;
  for (const e of events) {
    const lk = await topo.buckets.locks.get(lockKey({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel: "wechat" }));
    if (lk?.operation !== "PUT") continue;
    if (decodeJson<LockValue>(lk.value).event_id !== e.id) foreignLocks++;
    if (!(await records.get(sendIdOf(e)))) orphans.push(e.id);
  }
  t.equal(foreignLocks, 0, "every lock names the event that claimed it");
  t.ok(orphans.length >= 1, `${orphans.length} claim(s) left without a job`);
  t.equal(sim.messages.length, 0, "nothing sent yet");

  // A healthy dispatcher takes over: the redelivered event finds its own claim and re-publishes.
  const healthy = await procs.startReady("dispatcher", env, "dispatcher-healthy");
  await waitDelivered(sim, events, 30_000);
  await waitSendsEmpty(topo.jsm, 30_000, records);
  const ms = elapsed();
  const recs = await readRecords(records, events.map((e) => sendIdOf(e)));
  const result = tally(sim, events);
  const republished = await scrapeCounter(String((await healthy.ready()).metrics), "notifications_events_total", { outcome: "republished" });
  t.comment(summaryLine("dispatcher-killed-between-claim-and-publish", result, ms, { orphaned_claims: orphans.length, republished }));

  t.equal(result.lost, 0, "nothing lost");
  t.equal(result.duplicated, 0, "nothing sent twice");
  t.equal(result.delivered, EVENTS, "every event delivered");
  t.equal([...recs.values()].filter((r) => r?.status === Status.success).length, EVENTS, "every record success");
  t.ok(republished >= orphans.length, `the healthy dispatcher re-published the orphaned claims (${republished})`);
  for (const id of orphans) {
    const e = events.find((x) => x.id === id)!;
    const history = await records.history(sendIdOf(e));
    t.same(history.map((h) => h.status), [Status.queued, Status.success], `${sendIdOf(e)}: queued once, then success`);
  }
});
