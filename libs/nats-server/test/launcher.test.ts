import t from "tap";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster, NatsServer } from "@notify/nats-server";

// A forming cluster may take NatsCluster.start's whole 90 s wait on a loaded box (it restarts a stuck node).
t.setTimeout(300_000);

t.test("launcher - a JetStream server on free ports, removed on stop", async (t) => {
  const a = await NatsServer.start();
  const b = await NatsServer.start();
  t.not(a.port, b.port, "two servers in one process get different ports");
  const nc = await connect({ servers: a.url });
  const jsm = await jetstreamManager(nc);
  const info = await jsm.getAccountInfo();
  t.ok(info.limits, "JetStream answers");
  await nc.close();
  await Promise.all([a.stop(), b.stop()]);
  t.notOk(existsSync(a.dir), "temporary dir removed");
  await a.stop(); // idempotent
});

t.test("launcher - a bad config exits early with the server's own message", async (t) => {
  await t.rejects(NatsServer.start({ extraConfig: "this is { not valid" }), /exited early/);
});

t.test("launcher - restart keeps the port and the JetStream store", async (t) => {
  const s = await NatsServer.start();
  let nc = await connect({ servers: s.url });
  let jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "KEEP", subjects: ["keep.>"] });
  await nc.close();
  const s2 = await s.restart();
  t.equal(s2.port, s.port);
  nc = await connect({ servers: s2.url });
  jsm = await jetstreamManager(nc);
  t.equal((await jsm.streams.info("KEEP")).config.name, "KEEP", "stream survived the restart");
  await nc.close();
  await s2.stop();
  t.notOk(existsSync(s.dir), "the first incarnation's dir is removed too");
});

t.test("launcher - a 3-node JetStream cluster agrees on a meta leader", async (t) => {
  const c = await NatsCluster.start(3);
  t.teardown(() => c.stop());
  const leader = await c.waitForMetaLeader();
  t.match(leader, /^n[123]$/);
  const nc = await connect({ servers: c.urls });
  const jsm = await jetstreamManager(nc);
  const si = await jsm.streams.add({ name: "R3", subjects: ["r3.>"], num_replicas: 3 });
  t.equal(si.cluster?.replicas?.length, 2, "an R3 stream has a leader and two replicas");
  await nc.close();
});

t.test("launcher - the placement probe: an R3 stream is placed on a formed cluster; a cluster that is gone gives a reason, not a throw", async (t) => {
  const c = await NatsCluster.start(3);
  t.teardown(() => c.stop());
  t.equal(await c.canPlaceReplicatedStream(), true, "all three nodes up: the probe stream is placed (and removed)");
  const nc = await connect({ servers: c.urls });
  const jsm = await jetstreamManager(nc);
  t.same(await jsm.streams.names().next(), [], "the probe leaves no stream behind");
  await nc.close();
  // (One node down is not a failure: two of three form the stream's quorum.)
  await c.stop();
  const down = await c.canPlaceReplicatedStream();
  t.type(down, "string", "with the cluster gone the probe reports why, instead of throwing");
  t.match(String(down), /CONNECTION_REFUSED|refused|ECONNREFUSED|timeout/i);
});

t.test("launcher - a cluster whose servers cannot start rejects with the server's message, not a hang", async (t) => {
  await t.rejects(NatsCluster.start(3, { extraConfig: "no_such_option_at_all: 1" }), /exited early/);
});

t.test("launcher - a route port taken before nats-server binds it fails with the message NatsCluster.start retries on", async (t) => {
  const squatter = createServer().listen(0, "127.0.0.1");
  await once(squatter, "listening");
  t.teardown(() => new Promise<void>((r) => squatter.close(() => r())));
  const port = (squatter.address() as AddressInfo).port;
  await t.rejects(NatsServer.start({ name: "taken", cluster: { name: "taken", port, routes: [`nats://127.0.0.1:${port}`] } }), /address already in use/i);
});
