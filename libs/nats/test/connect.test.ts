/**
 * A server that stops answering (frozen, or a container killed without a FIN) is given up
 * after NATS_PING_INTERVAL_MS × 2 and the client moves to another server of the cluster,
 * on real nats-server processes (one is SIGSTOPped).
 */
import t from "tap";
import { NatsCluster } from "@notify/nats-server";
import { connectNats, connectionOptions, NATS_CONNECT_TIMEOUT_MS, NATS_MAX_PINGS_OUT } from "@notify/nats";
import { loadConfig } from "@notify/config";
import { Type } from "typebox";
import { NatsEnv } from "@notify/config";

// A forming cluster may take NatsCluster.start's whole 90 s wait on a loaded box (it restarts a stuck node).
t.setTimeout(300_000);

t.test("connect - the ping interval comes from NATS_PING_INTERVAL_MS (default 10 s), two pings out", async (t) => {
  const schema = Type.Object(NatsEnv);
  const def = loadConfig(schema, {});
  t.equal(def.NATS_PING_INTERVAL_MS, 10_000);
  const o = connectionOptions(def, "t");
  t.equal(o.pingInterval, 10_000);
  t.equal(o.maxPingOut, NATS_MAX_PINGS_OUT);
  t.equal(o.timeout, NATS_CONNECT_TIMEOUT_MS);
  t.equal(connectionOptions(loadConfig(schema, { NATS_PING_INTERVAL_MS: "2500" }), "t").pingInterval, 2500);
  t.throws(() => loadConfig(schema, { NATS_PING_INTERVAL_MS: "0" }), /NATS_PING_INTERVAL_MS/, "0 is refused by name");
  t.throws(() => loadConfig(schema, { NATS_PING_INTERVAL_MS: "soon" }), /NATS_PING_INTERVAL_MS/);
});

t.test("connect - a frozen server is given up and the client carries on through another", async (t) => {
  const cluster = await NatsCluster.start(3);
  t.teardown(() => cluster.stop());
  const first = cluster.servers[0]!;
  const nc = await connectNats({ NATS_URL: cluster.servers.map((s) => s.url), NATS_PING_INTERVAL_MS: 300 }, "ping-test");
  t.teardown(() => nc.close());
  // Pin the connection's server: the client may have picked any of the three.
  const connected = cluster.servers.find((s) => nc.getServer().endsWith(`:${new URL(s.url).port}`));
  t.ok(connected, `connected to ${nc.getServer()}`);
  const frozen = connected ?? first;
  const events: string[] = [];
  const watch = (async () => {
    for await (const st of nc.status()) {
      events.push(st.type);
      if (st.type === "reconnect") return;
    }
  })();
  process.kill(frozen.pid!, "SIGSTOP");
  t.teardown(() => {
    try {
      process.kill(frozen.pid!, "SIGCONT");
    } catch {
      // already gone
    }
  });
  // The TCP connection stays up: only the unanswered pings tell. Bounded generously for a
  // loaded box; with the library's default (2 min × 2) this would not end for minutes.
  const gaveUp = await Promise.race([watch.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 40_000))]);
  t.ok(gaveUp, `reconnected elsewhere (${events.join(" → ")})`);
  t.ok(events.includes("staleConnection") || events.includes("disconnect"), "the frozen server was noticed");
  t.not(nc.getServer(), `${new URL(frozen.url).hostname}:${new URL(frozen.url).port}`, "now on another server");
  const rtt = await nc.rtt();
  t.ok(rtt >= 0, "the connection works");
});
