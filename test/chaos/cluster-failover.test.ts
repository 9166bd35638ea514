import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { connect } from "@nats-io/transport-node";
import { jetstream, type StreamInfo } from "@nats-io/jetstream";
import { Buckets, Consumers, Status, Streams } from "@notify/contracts";
import { RecordStore, ensureTopology } from "@notify/nats";
import { NatsCluster } from "@notify/nats-server";
import { startSimulator } from "@notify/wechat-simulator";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";
import {
  Processes,
  percentile,
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

// A forming cluster may take NatsCluster.start's whole 90 s wait on a loaded box (it restarts a stuck node).
t.setTimeout(300_000);

const EVENTS = 1000;
const BATCH = 20;
const BATCH_EVERY_MS = 200;

t.test("chaos - 3-node cluster, R3: the SENDS leader is killed mid-run, nothing lost or doubled, it rejoins and catches up", async (t) => {
  const cluster = await NatsCluster.start(3);
  t.teardown(() => cluster.stop());
  const nc = await connect({ servers: cluster.urls, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc, { replicas: 3 });
  const { jsm } = topo;
  const js = jetstream(nc);
  t.equal((await jsm.streams.info(Streams.sends)).config.num_replicas, 3, "SENDS is R3");
  t.equal((await jsm.streams.info(`KV_${Buckets.records}`)).config.num_replicas, 3, "the record bucket is R3");
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  sim.setFault({ kind: "latency", ms: 10 });
  await putTemplate(topo.buckets.templates, paidTemplate());

  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const env = workerEnv(cluster.urls, sim, { NATS_REPLICAS: "3" });
  await Promise.all([procs.startReady("dispatcher", env), procs.startReady("sender", env, "sender-a"), procs.startReady("sender", env, "sender-b")]);

  const events = Array.from({ length: EVENTS }, () => paidEvent());
  const publishedAt = new Map<string, number>();
  const elapsed = stopwatch();
  const publishing = (async () => {
    for (let i = 0; i < events.length; i += BATCH) {
      await Promise.all(
        events.slice(i, i + BATCH).map(async (e) => {
          publishedAt.set(sendIdOf(e), Date.now());
          await publishReliably(js, e);
        }),
      );
      await sleep(BATCH_EVERY_MS);
    }
  })();

  await waitFor(() => sim.messages.length >= EVENTS * 0.3, "30% delivered", 60_000);
  const before = await jsm.streams.info(Streams.sends);
  const leader = before.cluster?.leader ?? "";
  const victim = cluster.servers.findIndex((s) => s.opts.name === leader);
  t.ok(victim >= 0, `the SENDS leader is ${leader}`);
  const killedAt = Date.now();
  await cluster.kill(victim);

  const newLeader = await waitFor(async () => {
    const l = (await jsm.streams.info(Streams.sends)).cluster?.leader;
    return l && l !== leader ? l : null;
  }, "a new SENDS leader", 30_000, 100);
  // An upper bound on the election: the test's own connection may be reconnecting too.
  const electionMs = Date.now() - killedAt;

  await publishing;
  await waitDelivered(sim, events, 120_000);
  const ms = elapsed();

  // Latency: publish → WeChat accepted, before the kill and for events in flight around it.
  const latency = (from: number, to: number) =>
    events
      .map((e) => ({ at: publishedAt.get(sendIdOf(e))!, msg: sim.deliveriesFor(sendIdOf(e))[0] }))
      .filter((x) => x.msg && x.at >= from && x.at < to)
      .map((x) => x.msg!.accepted_at - x.at);
  const steady = latency(0, killedAt - 500);
  const around = latency(killedAt - 500, killedAt + electionMs + 2000);
  const after = latency(killedAt + electionMs + 2000, Infinity);
  const fmt = (v: number[]) => `p50=${Math.round(percentile(v, 50))}ms p99=${Math.round(percentile(v, 99))}ms max=${Math.round(Math.max(0, ...v))}ms n=${v.length}`;
  t.comment(`latency before the kill: ${fmt(steady)}`);
  t.comment(`latency around the kill (leader ${leader} → ${newLeader} in ${electionMs}ms): ${fmt(around)}`);
  t.comment(`latency after the failover: ${fmt(after)}`);

  const ci = await waitFor(async () => {
    const c = await jsm.consumers.info(Streams.sends, Consumers.sender("wechat"));
    return c.num_pending === 0 && c.num_ack_pending === 0 ? c : null;
  }, "the sender consumer to be idle", 60_000, 100);
  const records = new RecordStore(topo.buckets.records);
  const recs = await readRecords(records, events.map((e) => sendIdOf(e)));
  const leftovers = await sendsLeftovers(jsm);
  const result = tally(sim, events);

  // The killed node comes back on the same store and catches up on every stream.
  const restartedAt = Date.now();
  await cluster.restart(victim);
  const caughtUp = async (name: string) =>
    waitFor(async () => {
      const si: StreamInfo = await jsm.streams.info(name);
      const r = si.cluster?.replicas?.find((x) => x.name === leader);
      return r && r.current && !r.offline && (r.lag ?? 0) === 0 ? si : null;
    }, `${leader}'s replica of ${name} to be current`, 60_000, 200);
  const sends = await caughtUp(Streams.sends);
  await caughtUp(`KV_${Buckets.records}`);
  await caughtUp(`KV_${Buckets.locks}`);
  const catchUpMs = Date.now() - restartedAt;

  t.comment(
    summaryLine("cluster-sends-leader-killed", result, ms, {
      killed: leader,
      new_leader: newLeader,
      leader_seen_after_ms: electionMs,
      p99_before_ms: Math.round(percentile(steady, 99)),
      max_around_kill_ms: Math.round(Math.max(0, ...around)),
      catch_up_ms: catchUpMs,
    }),
  );
  t.equal(result.lost, 0, "nothing lost");
  t.equal(result.duplicated, 0, "nothing sent twice");
  t.equal(result.delivered, EVENTS, "every event delivered");
  t.same(statusCounts(recs), { [Status.success]: EVENTS }, "every record success");
  t.ok(leftovers.every((l) => l.seq <= ci.ack_floor.stream_seq), `no job waits in SENDS (${leftovers.length} finished ones below the ack floor)`);
  t.ok(sends.cluster?.replicas?.some((r) => r.name === leader && r.current), `${leader} rejoined and its SENDS replica is current`);
  t.same(procs.unexpectedExits(new Set()).map((p) => p.name), [], "every service process rode out the failover");
});
