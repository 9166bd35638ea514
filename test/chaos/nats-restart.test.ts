import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Consumers, Status, Streams } from "@notify/contracts";
import { RecordStore, ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { startSimulator } from "@notify/wechat-simulator";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";
import {
  Processes,
  publishReliably,
  putTemplate,
  readRecords,
  sendIdOf,
  sendsLeftovers,
  statusCounts,
  stopwatch,
  summaryLine,
  tally,
  waitDelivered,
  workerEnv,
} from "../support/chaos.js";

const EVENTS = 1000;
const BATCH = 50;
const BATCH_EVERY_MS = 150;

t.test("chaos - nats-server restarted (graceful, then kill -9) mid-run: services reconnect, nothing lost", async (t) => {
  let server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  const js = jetstream(nc);
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  sim.setFault({ kind: "latency", ms: 10 });
  await putTemplate(topo.buckets.templates, paidTemplate());

  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const env = workerEnv(server.url, sim);
  await Promise.all([procs.startReady("dispatcher", env), procs.startReady("sender", env, "sender-a"), procs.startReady("sender", env, "sender-b")]);

  const events = Array.from({ length: EVENTS }, () => paidEvent());
  const elapsed = stopwatch();
  let publishFailures = 0;
  // A steady stream of events, published the way the publisher contract asks (retry until acked).
  const publishing = (async () => {
    for (let i = 0; i < events.length; i += BATCH) {
      await Promise.all(
        events.slice(i, i + BATCH).map((e) =>
          publishReliably(js, e).catch((err: unknown) => {
            publishFailures++;
            throw err;
          }),
        ),
      );
      await sleep(BATCH_EVERY_MS);
    }
  })();

  const outages: string[] = [];
  // Restart 1: graceful (SIGTERM) once a fifth of the events are out.
  await waitFor(() => sim.messages.length >= EVENTS * 0.2, "a fifth delivered", 60_000);
  let down = Date.now();
  server = await server.restart();
  outages.push(`graceful:${Date.now() - down}ms`);
  // Restart 2: a crash (SIGKILL) on the same port and store once half are out.
  await waitFor(() => sim.messages.length >= EVENTS * 0.5, "half delivered", 60_000);
  down = Date.now();
  await server.kill("SIGKILL");
  server = await NatsServer.start({ ...server.opts, port: server.port, storeDir: server.storeDir, cleanupDirs: server.restartCleanup() });
  outages.push(`kill9:${Date.now() - down}ms`);

  await publishing;
  await waitDelivered(sim, events, 120_000);
  const ms = elapsed();
  // Every job settled: nothing pending or unacknowledged on the sender consumer.
  const ci = await waitFor(async () => {
    const c = await topo.jsm.consumers.info(Streams.sends, Consumers.sender("wechat"));
    return c.num_pending === 0 && c.num_ack_pending === 0 && c.num_redelivered === 0 ? c : null;
  }, "the sender consumer to be idle", 60_000, 100);
  // nats-server 2.9 after a kill -9: acked work-queue messages whose removal was not yet on
  // disk come back in the stream, below the consumer's ack floor, and are never delivered
  // again (fixed in 2.10.x). They must all be finished jobs.
  const leftovers = await sendsLeftovers(topo.jsm);
  const records = new RecordStore(topo.buckets.records);
  const leftoverStatus = statusCounts(await readRecords(records, leftovers.map((l) => l.send_id)));
  const recs = await readRecords(records, events.map((e) => sendIdOf(e)));
  const result = tally(sim, events);
  t.comment(summaryLine("nats-server-restart", result, ms, { restarts: outages.join(","), sends_orphans_2_9: leftovers.length }));

  t.equal(publishFailures, 0, "every event was eventually accepted by JetStream");
  t.equal(result.lost, 0, "nothing lost");
  t.equal(result.duplicated, 0, "nothing sent twice");
  t.same(statusCounts(recs), { [Status.success]: EVENTS }, "every record success");
  t.ok(leftovers.every((l) => l.seq <= ci.ack_floor.stream_seq), "jobs left in SENDS are all below the consumer's ack floor (never redelivered)");
  t.same(Object.keys(leftoverStatus).filter((s) => s !== Status.success), [], `and every one of them was delivered (${JSON.stringify(leftoverStatus)})`);
  t.same(procs.unexpectedExits(new Set()).map((p) => p.name), [], "every service process survived both restarts");
  const reconnects = procs.all.map((p) => p.lines.filter((l) => /"nats":"reconnect"/.test(l)).length);
  t.ok(reconnects.every((n) => n >= 2), `each service logged its reconnects (${reconnects.join(", ")})`);
});
