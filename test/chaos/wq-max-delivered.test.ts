import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { connect } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { NatsCluster } from "@notify/nats-server";
import { waitFor } from "../support/wait.js";

// A forming cluster may take NatsCluster.start's whole 90 s wait on a loaded box (it restarts a stuck node).
t.setTimeout(300_000);

/**
 * What nats-server does with a work-queue message that reached the consumer's max_deliver
 * in an R3 stream, once later messages are acked past it and leaders move (what a
 * partition or a killed node does). The sender no longer relies on the answer (it
 * dead-letters a job itself before the server's limit), but the answer is why: the DLQ
 * monitor's advisory path reads the job back from SENDS by sequence.
 */
const STREAM = "WQMAX";
const CONSUMER = "w";

async function present(jsm: JetStreamManager, seq: number): Promise<boolean> {
  return (await jsm.streams.getMessage(STREAM, { seq }).catch(() => null)) !== null;
}

t.test("work-queue R3: a max-delivered message below the ack floor, through leader step-downs and a node restart", async (t) => {
  const cluster = await NatsCluster.start(3);
  t.teardown(() => cluster.stop());
  const nc = await connect({ servers: cluster.urls, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await waitFor(
    () => jsm.streams.add({ name: STREAM, subjects: ["wqmax.>"], retention: RetentionPolicy.Workqueue, storage: StorageType.File, num_replicas: 3 }).then(() => true, () => null),
    "the R3 stream",
    30_000,
    200,
  );
  await jsm.consumers.add(STREAM, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, max_deliver: 2, ack_wait: 2_000_000_000 });
  const consumer = await js.consumers.get(STREAM, CONSUMER);

  // Message 1 is nak'ed until it reaches max_deliver; messages 2..11 are acked, which
  // moves the ack floor past it.
  const dead = (await js.publish("wqmax.a", "dead")).seq;
  for (let i = 0; i < 2; i++) {
    const m = await consumer.next({ expires: 5000 });
    t.equal(m?.seq, dead, `delivery ${i + 1} of the dead message`);
    m?.nak();
  }
  for (let i = 0; i < 10; i++) await js.publish("wqmax.a", `ok ${i}`);
  for (let i = 0; i < 10; i++) {
    const m = await consumer.next({ expires: 5000 });
    t.not(m?.seq, dead, "the dead message is not delivered a third time");
    await m?.ackAck();
  }
  const ci = await jsm.consumers.info(STREAM, CONSUMER);
  t.ok(ci.ack_floor.stream_seq > dead, `the ack floor (${ci.ack_floor.stream_seq}) is past the max-delivered message (${dead})`);
  const observed: string[] = [];
  const look = async (step: string) => {
    // Let the step settle (elections, interest checks) before reading.
    await sleep(1500);
    const ok = await waitFor(async () => (await jsm.streams.info(STREAM).then(() => true, () => null)), `${STREAM} answers after ${step}`, 30_000, 200);
    const p = ok && (await present(jsm, dead));
    observed.push(`${step}: ${p ? "kept" : "GONE"}`);
    return p;
  };
  t.ok(await look("acked past"), "kept while nothing moves (the advisory path reads it from here)");
  await nc.request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${STREAM}.${CONSUMER}`, "", { timeout: 10_000 }).catch(() => undefined);
  // nats-server 2.10.27 (and 2.12 before https://github.com/nats-io/nats-server/pull/7845) removes a
  // max-delivered work-queue message that is below the ack floor when the consumer's
  // leader changes: a partition or a killed node is enough. When a server keeps it, this
  // flips: update docs/DECISIONS.md.
  t.notOk(await look("consumer leader step-down"), "dropped by the new consumer leader: the advisory path can find nothing to dead-letter");
  await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, "", { timeout: 10_000 }).catch(() => undefined);
  await look("stream leader step-down");
  const leader = (await jsm.streams.info(STREAM)).cluster?.leader ?? "";
  const i = cluster.servers.findIndex((s) => s.opts.name === leader);
  await cluster.restart(i);
  await look("stream leader killed and restarted");
  const si = await jsm.streams.info(STREAM);
  const varz = (await (await fetch(`${cluster.servers[0]!.monitorUrl}/varz`)).json()) as { version?: string };
  t.comment(`nats-server ${varz.version ?? "?"}: max-delivered message ${dead}: ${observed.join("; ")}; stream has ${si.state.messages} message(s)`);
  // The observation itself is the result; the assertion is that the stream is consistent
  // with what getMessage says (no message the consumer would hand out again).
  const next = await consumer.next({ expires: 2000 });
  t.equal(next, null, "the consumer never hands the max-delivered message out again");
});
