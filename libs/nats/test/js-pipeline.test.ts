import t from "tap";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { NatsServer } from "@notify/nats-server";
import { JsPipeline, KvWriter, NoStreamError, TimeoutError, isWrongLastSequence } from "@notify/nats";

const enc = (s: string) => new TextEncoder().encode(s);

// One server for this file; every test uses its own stream and bucket names.
let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;

t.before(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  js = jetstream(nc);
});
t.teardown(async () => {
  await nc.close();
  await server.stop();
});

async function bucket(name: string): Promise<KV> {
  return new Kvm(js).create(name, { history: 5 });
}

t.test("js pipeline - publish answers with the PubAck; a repeated Nats-Msg-Id is a duplicate", async (t) => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "PIPE_A", subjects: ["pipe.a.>"] });
  const p = new JsPipeline(nc);
  t.teardown(() => p.close());
  const a = await p.publish("pipe.a.1", enc("one"), { msgID: "m-1" });
  t.match(a, { stream: "PIPE_A", seq: 1, duplicate: false });
  const b = await p.publish("pipe.a.1", enc("again"), { msgID: "m-1" });
  t.match(b, { stream: "PIPE_A", seq: 1, duplicate: true });
  const many = await Promise.all(Array.from({ length: 500 }, (_, i) => p.publish(`pipe.a.${i}`, enc(String(i)))));
  t.equal(new Set(many.map((x) => x.seq)).size, 500, "500 concurrent publishes, 500 sequences");
  t.equal(p.inFlight, 0, "nothing left pending");
  const m = await jsm.streams.getMessage("PIPE_A", { seq: 1 });
  t.equal(m?.header.get("Nats-Msg-Id"), "m-1", "the message id travelled as a header");
});

t.test("js pipeline - headers: the caller's travel with the options', the options win a clash", async (t) => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "PIPE_H", subjects: ["pipe.h.>"] });
  const p = new JsPipeline(nc);
  t.teardown(() => p.close());
  const h = headers();
  h.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  h.append("X-Multi", "a");
  h.append("X-Multi", "b");
  h.set("Nats-Msg-Id", "from-headers");
  const a = await p.publish("pipe.h.1", enc("x"), { headers: h, msgID: "from-options" });
  const m = await jsm.streams.getMessage("PIPE_H", { seq: a.seq });
  t.equal(m?.header.get("traceparent"), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  t.same(m?.header.values("X-Multi"), ["a", "b"]);
  t.same(m?.header.values("Nats-Msg-Id"), ["from-options"], "one message id: the option's");
  const bad = headers();
  bad.set("X-Ok", "fine");
  await t.rejects(p.publish("pipe.h.1", enc("x"), { headers: bad, msgID: "two\nlines" }), /one line/);
});

t.test("js pipeline - expected last subject sequence: a conflict rejects as JetStreamApiError 10071", async (t) => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "PIPE_B", subjects: ["pipe.b.>"] });
  const p = new JsPipeline(nc);
  t.teardown(() => p.close());
  await p.publish("pipe.b.k", enc("v1"), { expect: { lastSubjectSequence: 0 } });
  const err = await p.publish("pipe.b.k", enc("v2"), { expect: { lastSubjectSequence: 0 } }).catch((e: unknown) => e);
  t.ok(isWrongLastSequence(err), "create-only on a taken subject is 10071");
});

t.test("js pipeline - no stream on the subject, no answer, closed", async (t) => {
  const p = new JsPipeline(nc, { timeoutMs: 200 });
  await t.rejects(p.publish("pipe.nowhere", enc("x")), NoStreamError, "no responders: no stream listens there");
  // A core subscriber that never answers: the sweep times the request out.
  const sub = nc.subscribe("pipe.silent");
  t.teardown(() => sub.unsubscribe());
  const t0 = Date.now();
  const err = await p.publish("pipe.silent", enc("x")).catch((e: unknown) => e);
  t.ok(err instanceof TimeoutError && err.name === "TimeoutError", "times out with a TimeoutError");
  t.ok(Date.now() - t0 < 2000, "within the time-out and a sweep tick");
  const pending = p.publish("pipe.silent", enc("x")).catch((e: unknown) => e);
  p.close();
  t.match(await pending, { name: "PipelineClosedError" }, "close() rejects what is pending");
  await t.rejects(p.publish("pipe.silent", enc("x")), { name: "PipelineClosedError" });
});

t.test("js pipeline - unsupported publish options use the fallback client, or fail loudly", async (t) => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "PIPE_C", subjects: ["pipe.c.>"] });
  const bare = new JsPipeline(nc);
  t.teardown(() => bare.close());
  await t.rejects(bare.publish("pipe.c.1", enc("x"), { retries: 3 }), /not supported/);
  const withFallback = new JsPipeline(nc, { fallback: js });
  t.teardown(() => withFallback.close());
  t.match(await withFallback.publish("pipe.c.1", enc("x"), { retries: 3 }), { stream: "PIPE_C" });
});

t.test("js pipeline - ackAck confirms the ack: the message does not come back", async (t) => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "PIPE_D", subjects: ["pipe.d.>"] });
  await jsm.consumers.add("PIPE_D", { durable_name: "d", ack_policy: AckPolicy.Explicit, ack_wait: 1_000_000_000 });
  await js.publish("pipe.d.1", enc("job"));
  const p = new JsPipeline(nc);
  t.teardown(() => p.close());
  const c = await js.consumers.get("PIPE_D", "d");
  const m = await c.next();
  t.ok(m);
  await p.ackAck(m!);
  const ci = await jsm.consumers.info("PIPE_D", "d");
  t.equal(ci.num_ack_pending, 0, "acked, and the server said so");
  t.equal(ci.ack_floor.stream_seq, 1);
  t.equal(await c.next({ expires: 1500 }), null, "not redelivered after the ack wait");
});

t.test("kv writer - create, update and put keep kv semantics", async (t) => {
  const kv = await bucket("pipe_kv_a");
  const p = new JsPipeline(nc);
  t.teardown(() => p.close());
  const w = new KvWriter(kv, p, "pipe_kv_a");

  const r1 = await w.create("k.1", enc("first"));
  t.equal((await kv.get("k.1"))?.revision, r1, "created at the revision it reports");
  t.ok(isWrongLastSequence(await w.create("k.1", enc("second")).catch((e: unknown) => e)), "create on a taken key: 10071, like kv.create");

  const taken = await w.createOrRead("k.1", enc("second"));
  t.equal(taken.created, false);
  t.equal(taken.created ? "" : new TextDecoder().decode(taken.current!.value), "first", "createOrRead tells what holds the key");

  const r2 = await w.update("k.1", enc("v2"), r1);
  t.ok(r2 > r1);
  t.ok(isWrongLastSequence(await w.update("k.1", enc("stale"), r1).catch((e: unknown) => e)), "a stale revision is refused");
  await w.put("k.1", enc("v3"));
  t.equal(new TextDecoder().decode((await kv.get("k.1"))!.value), "v3");

  // A deleted or purged key is created over, as kv.create does.
  await kv.delete("k.1");
  const again = await w.createOrRead("k.1", enc("reborn"));
  t.equal(again.created, true, "create over a delete marker");
  await kv.purge("k.1");
  t.equal((await w.createOrRead("k.1", enc("after purge"))).created, true, "create over a purge marker");
  t.equal(new TextDecoder().decode((await kv.get("k.1"))!.value), "after purge");

  await t.rejects(w.put("bad key", enc("x")), /invalid key/);
});

t.test("kv writer - concurrent creates of one key: exactly one wins", async (t) => {
  const kv = await bucket("pipe_kv_b");
  const p = new JsPipeline(nc);
  t.teardown(() => p.close());
  const w = new KvWriter(kv, p, "pipe_kv_b");
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => w.createOrRead("lock.1", enc(`claim-${i}`))));
  t.equal(results.filter((r) => r.created).length, 1, "one claim");
  const holder = new TextDecoder().decode((await kv.get("lock.1"))!.value);
  for (const r of results) if (!r.created) t.equal(new TextDecoder().decode(r.current!.value), holder, "the losers read the winner");
});
