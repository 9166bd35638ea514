import t from "tap";
import { connect, nanos } from "@nats-io/transport-node";
import { AckPolicy, jetstreamManager, JetStreamApiCodes, JetStreamApiError, RetentionPolicy } from "@nats-io/jetstream";
import { NatsCluster, NatsServer, freePort } from "@notify/nats-server";
import { Buckets, Consumers, Streams, Subjects } from "@notify/contracts";
import { SENDER_MAX_ATTEMPTS, SENDER_MAX_DELIVER, TopologyMismatchError, defaultSenderAckWait, ensureTopology, isWrongLastSequence } from "@notify/nats";
import type { Logger } from "@notify/log";
import { serverBinaries } from "../../../test/support/servers.js";

// The forming-cluster case below may use the whole of ensureTopology's own wait (180 s)
// on a loaded box: the file's time-out must not cut it shorter.
t.setTimeout(300_000);

t.test("topology - created on a single server, second call is a no-op", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());

  const first = await ensureTopology(nc, { channels: ["wechat"] });
  t.ok(first.report.created.includes(`stream ${Streams.sends}`));
  t.ok(first.report.created.includes(`bucket ${Buckets.locks}`));
  t.ok(first.report.created.includes(`consumer ${Streams.sends}/${Consumers.sender("wechat")}`));
  t.same(first.report.differences, []);

  const second = await ensureTopology(nc, { channels: ["wechat"] });
  t.same(second.report.created, [], "nothing created the second time");
  t.same(second.report.differences, [], "and nothing differs");
  t.equal(second.report.existing.length, first.report.created.length);

  const jsm = await jetstreamManager(nc);
  const sends = await jsm.streams.info(Streams.sends);
  t.equal(sends.config.retention, RetentionPolicy.Workqueue);
  const sender = await jsm.consumers.info(Streams.sends, Consumers.sender("wechat"));
  t.equal(sender.config.max_deliver, SENDER_MAX_DELIVER, "max_deliver is a backstop: the sender dead-letters after its fifth call itself");
  t.ok(SENDER_MAX_DELIVER >= 10 * SENDER_MAX_ATTEMPTS, "far above the five attempts");
  t.notOk(sender.config.backoff?.length, "no backoff: the sender's delayed naks are the retry schedule");
  t.equal(sender.config.ack_wait, nanos(defaultSenderAckWait(5000)), "a plain ack wait, 3× the default WeChat timeout");
});

// Both supported server versions: 2.9 adds a consumer backoff to every delayed nak.
for (const { binary, version } of serverBinaries()) {
  t.test(`topology - a sender consumer made with a backoff by an older version is updated to the plain ack wait (nats-server ${version})`, async (t) => {
    const server = await NatsServer.start({ binary });
    t.teardown(() => server.stop());
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    t.teardown(() => nc.close());
    await ensureTopology(nc);
    const jsm = await jetstreamManager(nc);
    const name = Consumers.sender("wechat");
    // The shape earlier versions created.
    await jsm.consumers.add(Streams.sends, {
      durable_name: name,
      filter_subject: Subjects.send("wechat"),
      ack_policy: AckPolicy.Explicit,
      max_deliver: 5,
      backoff: [15_000, 30_000, 60_000, 120_000].map(nanos),
      max_ack_pending: 1000,
    });
    const { report } = await ensureTopology(nc, { channels: ["wechat"], senderAckWaitMs: 3000, onMismatch: "fail" });
    t.same(report.updated, [`consumer ${Streams.sends}/${name}`]);
    t.same(report.differences, [], "nothing left that differs");
    const ci = await jsm.consumers.info(Streams.sends, name);
    t.notOk(ci.config.backoff?.length, "backoff removed");
    t.equal(ci.config.ack_wait, nanos(3000), "ack wait set");
    t.equal(ci.config.max_deliver, SENDER_MAX_DELIVER, "max_deliver raised from the old 5 to the backstop");
    const again = await ensureTopology(nc, { channels: ["wechat"], senderAckWaitMs: 3000 });
    t.same(again.report.updated, [], "converged: the second start changes nothing");
  });
}

t.test("topology - kv.create on an existing key is refused with code 10071", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const { buckets } = await ensureTopology(nc);
  await buckets.locks.create("order.paid.wechat.O-1.=", "first");
  const err = await buckets.locks.create("order.paid.wechat.O-1.=", "second").catch((e: unknown) => e);
  t.ok(err instanceof JetStreamApiError, "a JetStreamApiError");
  t.equal((err as JetStreamApiError).code, JetStreamApiCodes.StreamWrongLastSequence);
  t.ok(isWrongLastSequence(err), "matched by code, not message");
  t.equal((await buckets.locks.get("order.paid.wechat.O-1.="))?.string(), "first", "the first claim stands");
});

t.test("topology - an existing resource with another config is reported, not rewritten", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: Streams.dlq, subjects: ["notify.dlq.*"], max_age: 0 });
  // EVENTS owned by publishers with a wider subject set: left alone, no difference.
  await jsm.streams.add({ name: Streams.events, subjects: ["events.>"], retention: RetentionPolicy.Limits });

  const warned: unknown[] = [];
  const log = { warn: (o: unknown) => warned.push(o), info: () => undefined } as never;
  const { report } = await ensureTopology(nc, { log });
  t.same(report.differences.map((d) => `${d.resource}.${d.field}`), [`stream ${Streams.dlq}.max_age`]);
  t.equal(warned.length, 1, "warned once");
  t.equal((await jsm.streams.info(Streams.dlq)).config.max_age, 0, "not rewritten");
  t.ok(report.created.includes(`consumer ${Streams.events}/${Consumers.dispatcher}`), "only the consumer is added to EVENTS");

  await t.rejects(ensureTopology(nc, { onMismatch: "fail" }), TopologyMismatchError);
});

t.test("topology - R3 streams and buckets on a 3-node cluster, idempotent", async (t) => {
  const cluster = await NatsCluster.start(3);
  t.teardown(() => cluster.stop());
  const nc = await connect({ servers: cluster.urls, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const first = await ensureTopology(nc, { replicas: 3 });
  t.same(first.report.differences, []);
  const second = await ensureTopology(nc, { replicas: 3 });
  t.same(second.report.created, []);
  const jsm = await jetstreamManager(nc);
  for (const name of [Streams.events, Streams.sends, `KV_${Buckets.records}`]) {
    const si = await jsm.streams.info(name);
    t.equal(si.config.num_replicas, 3, `${name} is R3`);
    t.equal(si.cluster?.replicas?.length, 2, `${name} has two followers`);
  }
  await first.buckets.locks.create("k", "v");
  t.ok(isWrongLastSequence(await first.buckets.locks.create("k", "v2").catch((e: unknown) => e)), "create-only claim holds in the cluster");
});

// Compose and Kubernetes start the services with the NATS nodes: a service may ask for R3
// streams before the cluster has a meta leader or knows three peers ("no suitable peers",
// "JetStream system temporarily unavailable", or no answer at all). It waits and retries.
t.test("topology - R3 topology requested while the cluster forms is created once it has formed", async (t) => {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const routes = ports.map((p) => `nats://127.0.0.1:${p}`);
  const cluster = { name: `forming${process.pid}`, routes };
  const start = (i: number) => NatsServer.start({ name: `f${i + 1}`, cluster: { ...cluster, port: ports[i]! } });
  const servers: NatsServer[] = [await start(0)];
  t.teardown(() => Promise.allSettled(servers.map((s) => s.stop())));
  const nc = await connect({ servers: servers[0]!.url, noAsyncTraces: true });
  t.teardown(() => nc.close());

  const warnings: string[] = [];
  const log = { warn: (o: { err?: string }) => warnings.push(String(o.err)), info: () => {} } as unknown as Logger;
  const ensuring = ensureTopology(nc, { replicas: 3, channels: ["wechat"], log });
  // One node alone has no meta leader; two have one but too few peers for R3.
  await new Promise((r) => setTimeout(r, 1500));
  servers.push(await start(1));
  // With two nodes a meta leader is elected, and the R3 stream has too few peers.
  for (let i = 0; i < 60 && !warnings.some((w) => !/timeout/i.test(w)); i++) await new Promise((r) => setTimeout(r, 250));
  servers.push(await start(2));
  const topo = await ensuring.catch((err: Error) => {
    throw new Error(`${err.message} — after ${warnings.length} retries, the last ones: ${warnings.slice(-5).join(" | ")}`);
  });
  t.ok(warnings.length > 0, `it waited for the cluster (${warnings.length} retries: ${[...new Set(warnings)].join("; ")})`);
  t.ok(warnings.some((w) => /peers|unavailable|insufficient/i.test(w)), "including a refusal while the peers joined");
  t.ok(topo.report.created.includes(`stream ${Streams.sends}`), "SENDS created");
  const sends = await topo.jsm.streams.info(Streams.sends);
  t.equal(sends.config.num_replicas, 3, "with three replicas");
  t.equal((sends.cluster?.replicas?.length ?? 0) + 1, 3, "placed on all three nodes");
  const again = await ensureTopology(nc, { replicas: 3, channels: ["wechat"] });
  t.same(again.report.created, [], "a second call finds everything");
});

t.test("topology - a server without JetStream fails start-up at once (not retried as a forming cluster)", async (t) => {
  const server = await NatsServer.start({ jetstream: false });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const warnings: string[] = [];
  const log = { warn: (o: { err?: string }) => warnings.push(String(o.err)), info: () => {} } as unknown as Logger;
  const err = await ensureTopology(nc, { log }).then(
    () => null,
    (e: Error) => e,
  );
  t.ok(err, "ensureTopology rejects");
  t.notMatch(String(err?.name), /Timeout/, `with the server's answer, not a time-out (${err?.name}: ${err?.message})`);
  t.same(warnings, [], "and no retries");
});
