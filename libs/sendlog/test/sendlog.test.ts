import t from "tap";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Buckets, type SendRecord } from "@notify/contracts";
import { MigrationError, listSends, migrate, openDb, orderSends, projectBatch, sendStats, readMigrations, sqlSafe, truncateProjection, type Db, type KvChange } from "@notify/sendlog";
import { startPostgres } from "../../../test/support/postgres.ts";

const record = (sendId: string, status: SendRecord["status"], attempts: number, updatedAt: string, extra: Partial<SendRecord> = {}): SendRecord => ({
  send_id: sendId,
  event_id: `evt-${sendId}`,
  event: "order.paid",
  order_id: "O-1",
  ticket_id: null,
  channel: "wechat",
  language: "en",
  template_id: "TPL",
  openid: "o-1",
  status,
  attempts,
  occurred_at: "2026-11-24T08:00:00.000Z",
  updated_at: updatedAt,
  ...extra,
});

const put = (key: string, revision: number, value: unknown, bucket: string = Buckets.records): KvChange => ({
  bucket,
  key,
  revision,
  operation: "PUT",
  value,
  at: new Date(Date.UTC(2026, 10, 24, 8, 0, 0, revision)),
});

async function apply(db: Db, changes: KvChange[]): Promise<void> {
  const last = Math.max(0, ...changes.map((c) => c.revision));
  await db.transaction((tx) => projectBatch(tx, changes, { [`KV_${Buckets.records}`]: last }, { lockTtlMs: 60_000 }));
}

type Backend = { name: string; db: Db; cleanup: () => Promise<void> };

/** One database per backend for the whole file (PGlite takes seconds to initialise); each test starts from an empty schema. */
async function backends(): Promise<Backend[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sendlog-pglite-"));
  const server = await startPostgres();
  const lite = await openDb({ pgliteDir: dir });
  const pg = await openDb({ databaseUrl: server.url });
  return [
    { name: "pglite", db: lite, cleanup: async () => (await lite.close(), rmSync(dir, { recursive: true, force: true })) },
    { name: "postgres", db: pg, cleanup: async () => (await pg.close(), await server.stop()) },
  ];
}

async function fresh(db: Db): Promise<Db> {
  await db.exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
  return db;
}

const all = await backends();
t.teardown(async () => {
  for (const b of all) await b.cleanup();
});

for (const backend of all) {
  t.test(`${backend.name}: migrations apply once, are recorded with their checksum, and a changed file stops the runner`, async (t) => {
    const db = await fresh(backend.db);
    const first = await migrate(db);
    t.same(first.applied, readMigrations().map((m) => m.name));
    t.same((await migrate(db)).applied, [], "a second run applies nothing");
    const rows = await db.query<{ name: string; checksum: string }>("SELECT name, checksum FROM schema_migrations");
    t.same(rows, readMigrations().map((m) => ({ name: m.name, checksum: m.checksum })));
    const changed = readMigrations().map((m) => ({ ...m, checksum: "0".repeat(64) }));
    await t.rejects(migrate(db, changed), MigrationError);
    await t.rejects(migrate(db, []), /does not know: 0016_notification_templates.sql, 0017_send_receipts.sql/);
    // Two runners at once (the gateway and the projector start together): one applies, neither fails.
    await fresh(db);
    const both = await Promise.all([migrate(db), migrate(db)]);
    t.same(both.map((r) => r.applied.length).sort(), [0, readMigrations().length]);
  });

  t.test(`${backend.name}: a record's rows move only forward by revision; redelivery and replay change nothing`, async (t) => {
    const db = await fresh(backend.db);
    await migrate(db);
    const q = await (async () => {
      await apply(db, [put("snd_a", 1, record("snd_a", "queued", 0, "2026-11-24T08:00:01.000Z"))]);
      await apply(db, [put("snd_a", 5, record("snd_a", "retrying", 1, "2026-11-24T08:00:02.000Z", { last_error: "45015 user refused" }))]);
      await apply(db, [put("snd_a", 9, record("snd_a", "success", 2, "2026-11-24T08:00:03.000Z", { sent_at: "2026-11-24T08:00:03.000Z" }))]);
      return () => db.query<Record<string, unknown>>("SELECT send_id, revision, status, attempts, last_error, created_at, updated_at, sent_at FROM notification_events");
    })();
    const before = await q();
    // Redeliver everything, in a different order, twice.
    await apply(db, [put("snd_a", 9, record("snd_a", "success", 2, "2026-11-24T08:00:03.000Z")), put("snd_a", 1, record("snd_a", "queued", 0, "2026-11-24T08:00:01.000Z"))]);
    await apply(db, [put("snd_a", 5, record("snd_a", "retrying", 1, "2026-11-24T08:00:02.000Z"))]);
    t.same(await q(), before, "no row regressed");
    t.equal(before.length, 1);
    t.match(before[0], { status: "success", attempts: 2 });
    t.equal(new Date(before[0]!.created_at as Date).toISOString(), "2026-11-24T08:00:01.000Z", "created_at = the first revision's time");
    const history = await db.query<{ revision: unknown; status: string }>("SELECT revision, status FROM notification_event_history ORDER BY revision");
    t.same(history.map((h) => [Number(h.revision), h.status]), [[1, "queued"], [5, "retrying"], [9, "success"]], "each revision once");
    const off = await db.query<{ seq: unknown }>("SELECT seq FROM projector_offsets");
    t.equal(Number(off[0]!.seq), 9, "the offset never moves back either");
  });

  t.test(`${backend.name}: delivery receipts: delivered / blocked / undelivered with the receipt, the history and the search`, async (t) => {
    const db = await fresh(backend.db);
    await migrate(db);
    const chain = (id: string, final: SendRecord["status"], receipt: string, base: number) => [
      put(id, base + 1, record(id, "queued", 0, "2026-11-24T08:00:01.000Z")),
      put(id, base + 2, record(id, "success", 1, "2026-11-24T08:00:02.000Z", { sent_at: "2026-11-24T08:00:02.000Z", wechat_msgid: `${base}001` })),
      put(id, base + 3, record(id, final, 1, "2026-11-24T08:00:05.000Z", { sent_at: "2026-11-24T08:00:02.000Z", wechat_msgid: `${base}001`, receipt_status: receipt, receipt_at: "2026-11-24T08:00:04.000Z" })),
    ];
    // One batch for the first, one revision per batch for the others: both paths.
    await apply(db, chain("snd_dlv", "delivered", "success", 0));
    for (const c of chain("snd_blk", "blocked", "failed:user block", 10)) await apply(db, [c]);
    for (const c of chain("snd_und", "undelivered", "failed: system failed", 20)) await apply(db, [c]);
    const rows = await db.query<{ send_id: string; status: string; receipt_status: string; receipt_at: Date }>("SELECT send_id, status, receipt_status, receipt_at FROM notification_events ORDER BY send_id");
    t.same(
      rows.map((r) => [r.send_id, r.status, r.receipt_status, new Date(r.receipt_at).toISOString()]),
      [
        ["snd_blk", "blocked", "failed:user block", "2026-11-24T08:00:04.000Z"],
        ["snd_dlv", "delivered", "success", "2026-11-24T08:00:04.000Z"],
        ["snd_und", "undelivered", "failed: system failed", "2026-11-24T08:00:04.000Z"],
      ],
    );
    const history = await db.query<{ send_id: string; status: string }>("SELECT send_id, status FROM notification_event_history ORDER BY send_id, revision");
    for (const [id, final] of [["snd_dlv", "delivered"], ["snd_blk", "blocked"], ["snd_und", "undelivered"]] as const) {
      t.same(history.filter((h) => h.send_id === id).map((h) => h.status), ["queued", "success", final], `${id}: queued → success → ${final}`);
    }
    const found = await listSends(db, { status: "blocked" }, { limit: 10 });
    t.same(found.items.map((r) => [r.send_id, r.receipt_status, r.receipt_at]), [["snd_blk", "failed:user block", "2026-11-24T08:00:04.000Z"]], "the search filters by the receipt's status and returns the receipt");
    const order = await orderSends(db, "O-1", 10);
    const dlv = order.items.find((r) => r.send_id === "snd_dlv")!;
    t.same(dlv.history.map((h) => h.status), ["delivered", "success", "queued"], "the order view's history, newest first");
    const stats = await sendStats(db, { interval: "day", from: "2026-11-24T00:00:00.000Z", to: "2026-11-25T00:00:00.000Z" });
    t.same(stats.map((s) => [s.status, s.count]).sort(), [["blocked", 1], ["delivered", 1], ["undelivered", 1]], "stats count each receipt status");
    // A replayed older revision does not take the receipt away.
    await apply(db, [chain("snd_dlv", "delivered", "success", 0)[1]!]);
    t.match((await db.query("SELECT status, receipt_status FROM notification_events WHERE send_id = 'snd_dlv'"))[0], { status: "delivered", receipt_status: "success" });
  });

  t.test(`${backend.name}: the receipts migration fills the columns of rows projected before it`, async (t) => {
    const db = await fresh(backend.db);
    const [m16, m17] = readMigrations();
    await migrate(db, [m16!]);
    // Rows as the projection wrote them before the receipt columns existed.
    await db.query(
      `INSERT INTO notification_events (send_id, revision, event_id, event, channel, status, created_at, updated_at, record) VALUES ('snd_old', 1, 'e', 'order.paid', 'wechat', 'delivered', now(), now(), $1::jsonb), ('snd_bad', 2, 'e', 'order.paid', 'wechat', 'delivered', now(), now(), $2::jsonb)`,
      [JSON.stringify({ receipt_status: "success", receipt_at: "2026-11-24T08:00:04.000Z" }), JSON.stringify({ receipt_status: "success", receipt_at: "not a time" })],
    );
    t.same((await migrate(db, [m16!, m17!])).applied, ["0017_send_receipts.sql"]);
    const rows = await db.query<{ send_id: string; receipt_status: string; receipt_at: Date | null }>("SELECT send_id, receipt_status, receipt_at FROM notification_events ORDER BY send_id");
    t.same(rows.map((r) => [r.send_id, r.receipt_status, r.receipt_at && new Date(r.receipt_at).toISOString()]), [["snd_bad", "success", null], ["snd_old", "success", "2026-11-24T08:00:04.000Z"]]);
  });

  t.test(`${backend.name}: hostile values never fail a batch`, async (t) => {
    const db = await fresh(backend.db);
    await migrate(db);
    const invalid: string[] = [];
    const changes: KvChange[] = [
      put("snd_nul", 1, record("snd_nul", "queued", 0, "2026-11-24T08:00:01.000Z", { order_id: "O-\u0000-1", openid: "\ud800", errors: [{ "\u0000k": "\udfff" }] })),
      put("snd_badtime", 2, record("snd_badtime", "failed", 1, "not a time", { occurred_at: "99999-01-01T00:00:00Z", sent_at: "yesterday" })),
      put("snd_huge_attempts", 3, record("snd_huge_attempts", "dead", 1e12, "2026-11-24T08:00:01.000Z")),
      put("snd_notjson", 4, undefined),
      put("snd_array", 5, [1, 2, 3]),
      put("O.paid.wechat.=xx", 6, "a string", Buckets.templates),
      put("lock.key", 7, null, Buckets.locks),
      { ...put("snd_nul", 8, undefined), operation: "DEL" },
    ];
    await db.transaction((tx) =>
      projectBatch(tx, changes, { [`KV_${Buckets.records}`]: 8 }, { onInvalid: (c, why) => invalid.push(`${c.key}: ${why}`) }),
    );
    t.same(invalid.sort(), ["O.paid.wechat.=xx: not a template", "lock.key: not a lock", "snd_array: not a send record", "snd_notjson: not a send record"].sort());
    const rows = await db.query<{ send_id: string; deleted: boolean; updated_at: Date; occurred_at: Date | null; attempts: number }>(
      "SELECT send_id, deleted, updated_at, occurred_at, attempts FROM notification_events ORDER BY send_id",
    );
    const by = Object.fromEntries(rows.map((r) => [r.send_id, r]));
    t.equal(by.snd_nul?.deleted, true, "a DEL hides the row");
    t.equal(by.snd_badtime?.occurred_at, null, "an impossible time becomes null");
    t.equal(new Date(by.snd_badtime!.updated_at).getTime(), Date.UTC(2026, 10, 24, 8, 0, 0, 2), "no updated_at in the record: the server's time");
    t.equal(by.snd_huge_attempts?.attempts, 0);
    t.equal(by.snd_notjson?.deleted, true, "an unreadable value is hidden but keeps its revision");
    // A replay of the older PUT does not bring a deleted send back.
    await apply(db, [put("snd_nul", 1, record("snd_nul", "queued", 0, "2026-11-24T08:00:01.000Z"))]);
    t.equal((await db.query<{ deleted: boolean }>("SELECT deleted FROM notification_events WHERE send_id = 'snd_nul'"))[0]?.deleted, true);
    const hist = await db.query<{ record: { order_id: string } }>("SELECT record FROM notification_event_history WHERE send_id = 'snd_nul' AND revision = 1");
    t.equal(hist[0]?.record.order_id, "O-\uFFFD-1", "NUL stored as U+FFFD");
  });

  t.test(`${backend.name}: any order of batches, with redeliveries, ends at the newest revision of every key (property)`, async (t) => {
    const db = await fresh(backend.db);
    await migrate(db);
    const statuses = ["queued", "retrying", "success", "failed", "dead"] as const;
    const change = fc.record({ key: fc.constantFrom("snd_1", "snd_2", "snd_3"), status: fc.constantFrom(...statuses), del: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), async (seq, cuts) => {
        await db.transaction((tx) => truncateProjection(tx));
        const changes: KvChange[] = seq.map((c, i) =>
          c.del ? { ...put(c.key, i + 1, undefined), operation: "DEL" } : put(c.key, i + 1, record(c.key, c.status, i, new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString())),
        );
        // Batches cut at random points, then a replay of a random suffix and a shuffled full replay.
        const points = [...new Set(cuts.map((c) => c % (changes.length + 1)))].sort((a, b) => a - b);
        let from = 0;
        for (const p of [...points, changes.length]) {
          if (p > from) await apply(db, changes.slice(from, p));
          from = Math.max(from, p);
        }
        await apply(db, changes.slice(points[0] ?? 0));
        await apply(db, [...changes].reverse());
        const want = new Map<string, KvChange>();
        for (const c of changes) want.set(c.key, c);
        const rows = await db.query<{ send_id: string; revision: unknown; status: string; deleted: boolean }>("SELECT send_id, revision, status, deleted FROM notification_events ORDER BY send_id");
        const expected = [...want.values()].sort((a, b) => a.key.localeCompare(b.key)).map((c) => ({ send_id: c.key, revision: c.revision, deleted: c.operation !== "PUT" }));
        const got = rows.map((r) => ({ send_id: r.send_id, revision: Number(r.revision), deleted: r.deleted }));
        if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`got ${JSON.stringify(got)} want ${JSON.stringify(expected)}`);
        const hist = await db.query<{ n: unknown }>("SELECT count(*) AS n FROM notification_event_history");
        if (Number(hist[0]!.n) !== changes.length) throw new Error(`history has ${String(hist[0]!.n)} rows for ${changes.length} revisions`);
      }),
      { numRuns: 40 },
    );
    t.pass("property held");
  });

  t.test(`${backend.name}: template revisions keep who changed them; the current view drops deleted keys`, async (t) => {
    const db = await fresh(backend.db);
    await migrate(db);
    const tpl = (id: string, by: string) => ({ event: "order.paid", channel: "wechat", language: "en", template_id: id, enabled: true, payload_schema: {}, data: {}, updated_at: "2026-11-24T08:00:00.000Z", updated_by: by });
    await db.transaction((tx) =>
      projectBatch(tx, [put("order.paid.wechat.en", 1, tpl("T1", "key:abc"), Buckets.templates), put("order.paid.wechat.en", 2, tpl("T2", "key:def"), Buckets.templates), put("order.cancelled.wechat.en", 3, tpl("T3", "key:abc"), Buckets.templates), { ...put("order.cancelled.wechat.en", 4, undefined, Buckets.templates), operation: "DEL" }], {}),
    );
    const revs = await db.query<{ revision: unknown; template_id: string | null; changed_by: string | null; operation: string }>("SELECT revision, template_id, changed_by, operation FROM notification_templates ORDER BY revision");
    t.same(revs.map((r) => [Number(r.revision), r.template_id, r.changed_by, r.operation]), [[1, "T1", "key:abc", "PUT"], [2, "T2", "key:def", "PUT"], [3, "T3", "key:abc", "PUT"], [4, null, null, "DEL"]]);
    const current = await db.query<{ key: string; template_id: string }>("SELECT key, template_id FROM notification_templates_current");
    t.same(current, [{ key: "order.paid.wechat.en", template_id: "T2" }]);
  });
}

t.test("sqlSafe replaces only what PostgreSQL cannot store", async (t) => {
  t.equal(sqlSafe("a\u0000b"), "a\uFFFDb");
  t.equal(sqlSafe("😀"), "😀", "a surrogate pair is kept");
  t.equal(sqlSafe("\ud83d"), "\uFFFD");
  t.same(sqlSafe({ "k\u0000": ["\udc00", 1, null, true] }), { "k\uFFFD": ["\uFFFD", 1, null, true] });
});
