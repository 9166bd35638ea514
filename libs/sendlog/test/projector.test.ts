import t from "tap";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Buckets, encodeJson, type SendRecord } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { NatsServer } from "@notify/nats-server";
import { ensureTopology } from "@notify/nats";
import { Projector, migrate, openDb, projectBatch, type Db, type Queryable } from "@notify/sendlog";

// The projector's batching against a real nats-server and PGlite: batches form from what
// arrives while one commits (no timer), each batch is one statement holding its rows and
// its stream position, and a stop commits what it holds.
const log = createLogger({ name: "projector-test", level: process.env.TEST_LOG_LEVEL ?? "silent" });
const server = await NatsServer.start();
const nc = await connect({ servers: server.url, noAsyncTraces: true });
const topo = await ensureTopology(nc, {});
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
const db = await openDb({ pgliteDir: "memory://" });
await migrate(db);
t.teardown(async () => {
  await db.close();
  await nc.close();
  await server.stop();
});

/** Counts the batch statements (each writes projector_offsets) and their sizes. */
function counting(inner: Db): { db: Db; batches: number[] } {
  const batches: number[] = [];
  const query = async <T>(sql: string, params?: unknown[]): Promise<T[]> => {
    if (sql.includes("INSERT INTO notification_event_history")) batches.push((JSON.parse(String(params![0])) as unknown[]).length);
    return inner.query<T>(sql, params);
  };
  return { db: { ...inner, query, exec: (s) => inner.exec(s), transaction: (fn) => inner.transaction(fn), close: () => inner.close() }, batches };
}

const rec = (id: string, n: number): SendRecord => ({
  send_id: id,
  event_id: `evt-${id}`,
  event: "order.paid",
  order_id: `O-${n}`,
  ticket_id: null,
  channel: "wechat",
  language: "en",
  template_id: "TPL",
  openid: `o-${n % 7}`,
  status: "queued",
  attempts: 0,
  occurred_at: "2026-11-24T08:00:00.000Z",
  updated_at: new Date(Date.UTC(2026, 10, 24, 8, 0, 0, n)).toISOString(),
});

const count = async () => Number((await db.query<{ n: unknown }>("SELECT count(*) AS n FROM notification_events"))[0]!.n);

t.test("a burst is committed in batches of at most batchSize; a lone revision at once, alone", async (t) => {
  const { db: counted, batches } = counting(db);
  const projector = new Projector({ js, jsm, db: counted, log, name: "batching", buckets: [Buckets.records], batchSize: 100 });
  await projector.start();
  const puts: Promise<unknown>[] = [];
  for (let i = 0; i < 1000; i++) puts.push(topo.buckets.records.put(`snd_burst_${i}`, encodeJson(rec(`snd_burst_${i}`, i))));
  await Promise.all(puts);
  await projector.caughtUp(120_000);
  t.equal(await count(), 1000, "every revision committed");
  t.equal(batches.reduce((a, b) => a + b, 0), 1000, "each revision in exactly one batch");
  t.ok(batches.every((b) => b <= 100), `no batch above batchSize (largest ${Math.max(...batches)})`);
  t.ok(batches.length < 1000, `revisions grouped: ${batches.length} batches for 1,000 revisions`);

  const before = batches.length;
  await topo.buckets.records.put("snd_lone", encodeJson(rec("snd_lone", 5000)));
  await projector.caughtUp(60_000);
  t.same(batches.slice(before), [1], "a lone revision is its own batch");
  await projector.stop();
  const offsets = await db.query<{ seq: unknown }>("SELECT seq FROM projector_offsets WHERE stream = 'KV_' || $1", [Buckets.records]);
  t.equal(Number(offsets[0]!.seq), (await jsm.streams.info(`KV_${Buckets.records}`)).state.last_seq, "the offset is the stream's last revision");
});

t.test("a batch whose statement fails writes nothing: rows and position commit together, without a transaction", async (t) => {
  const rows = await count();
  const bad: Queryable = db;
  // A null position violates projector_offsets.seq NOT NULL: the whole statement fails.
  await t.rejects(projectBatch(bad, [{ bucket: Buckets.records, key: "snd_atomic", revision: 1, operation: "PUT", value: rec("snd_atomic", 1), at: new Date() }], { [`KV_${Buckets.records}`]: Number.NaN }));
  t.equal(await count(), rows, "no row written");
  t.same(await db.query("SELECT send_id FROM notification_event_history WHERE send_id = 'snd_atomic'"), [], "no history written");
});

t.test("a restarted projector resumes where it stopped: nothing lost, nothing written twice", async (t) => {
  const { db: counted, batches } = counting(db);
  const first = new Projector({ js, jsm, db: counted, log, name: "batching", buckets: [Buckets.records], batchSize: 50 });
  await first.start();
  const puts: Promise<unknown>[] = [];
  for (let i = 0; i < 500; i++) puts.push(topo.buckets.records.put(`snd_resume_${i}`, encodeJson(rec(`snd_resume_${i}`, i))));
  await Promise.all(puts.splice(0, 250));
  // Stopped while revisions are still arriving.
  await first.stop();
  const second = new Projector({ js, jsm, db: counted, log, name: "batching", buckets: [Buckets.records], batchSize: 50 });
  await second.start();
  await Promise.all(puts);
  await second.caughtUp(120_000);
  await second.stop();
  const hist = await db.query<{ n: unknown; d: unknown }>("SELECT count(*) AS n, count(DISTINCT (send_id, revision)) AS d FROM notification_event_history WHERE send_id LIKE 'snd_resume_%'");
  t.equal(Number(hist[0]!.n), 500, "every revision once in the history");
  t.equal(Number(hist[0]!.d), 500, "none twice");
  t.equal(Number((await db.query<{ n: unknown }>("SELECT count(*) AS n FROM notification_events WHERE send_id LIKE 'snd_resume_%'"))[0]!.n), 500, "one row per send");
  t.ok(batches.length > 0, "the restarted projector committed batches");
});
