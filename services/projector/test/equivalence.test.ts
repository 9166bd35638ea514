import t from "tap";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeliverPolicy } from "@nats-io/jetstream";
import { Buckets, FailReason, HeaderNames, Subjects, decodeJson, encodeJson, kvStream, kvSubjectPrefix, type EventEnvelope, type SendRecord } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { Projector, listSends, migrate, openDb, orderSends, sendStats, type Db, type SendFilter, type SendRow } from "@notify/sendlog";
import { Stack } from "../../../test/support/stack.ts";
import { paidEvent, paidTemplate } from "../../../test/support/fixtures.ts";
import { startService, type ServiceProcess } from "../../../test/support/processes.ts";
import { startPostgres } from "../../../test/support/postgres.ts";
import { waitFor } from "../../../test/support/wait.ts";

// SENDLOG_EQUIVALENCE_EVENTS (default 2,000) events through the real pipeline (dispatcher, two senders, the WeChat simulator),
// projected by two projector processes at once: one into PGlite, one into PostgreSQL.
// Both are SIGKILLed mid-run and restarted. Then every filter the gateway offers must
// answer exactly what a scan of the KV bucket answers, and a rebuild from empty must
// give the same rows.
t.setTimeout(25 * 60_000);

// CI runs 2,000 (minutes on a shared box); SENDLOG_EQUIVALENCE_EVENTS=10000 is the figure.
const EVENTS = Number(process.env.SENDLOG_EQUIVALENCE_EVENTS ?? 2_000);
const log = createLogger({ name: "equivalence", level: process.env.TEST_LOG_LEVEL ?? "silent" });

const stack = await Stack.start({ senders: 2, senderConcurrency: 64, retryBaseMs: 20, wechatTimeoutMs: 10_000, log });
const pg = await startPostgres();
const liteDir = mkdtempSync(path.join(os.tmpdir(), "sendlog-eq-"));
t.teardown(async () => {
  await stack.close();
  await pg.stop();
  rmSync(liteDir, { recursive: true, force: true });
});

await stack.putTemplate(paidTemplate());
await stack.putTemplate(paidTemplate({ language: "en", template_id: "TPL_PAID_EN" }));
await stack.putTemplate(paidTemplate({ event: "ticket.refunded", template_id: "TPL_REFUND", payload_schema: {}, data: { thing1: "{{order_id}}" } }));
// order.cancelled has no template (skipped); order.paid data without a title fails its schema.
// One traveller has blocked the account (a permanent WeChat error: failed); another's first try fails (retrying, then success).
stack.sim.setFault({ kind: "errcode", errcode: 43004, openid: "oBlocked" });
stack.sim.setFault({ kind: "errcode", errcode: -1, openid: "oFlaky", times: 10 });

const backends = {
  postgres: { env: { DATABASE_URL: pg.url, PROJECTOR_NAME: "eq-pg" } },
  pglite: { env: { SENDLOG_PGLITE_DIR: liteDir, PROJECTOR_NAME: "eq-lite" } },
} as const;
type Backend = keyof typeof backends;

function startProjector(b: Backend): ServiceProcess {
  return startService("projector", { NATS_URL: stack.server.url, PROJECTOR_BATCH_SIZE: "200", ...backends[b].env }, `projector-${b}`);
}

function event(i: number): EventEnvelope | { bad: string } {
  const r = i % 100;
  const order = `O-${i % 2500}`;
  // Both on order.paid events (r ≥ 33) so their faults are met: an order.cancelled has no template.
  const openid = r === 47 ? "oBlocked" : r === 48 ? "oFlaky" : `oT${i % 500}`;
  if (r === 99) return { bad: i % 2 ? "{not json" : JSON.stringify({ id: `evt-bad-${i}`, event: "order.paid" }) };
  if (r < 10) return paidEvent({ event: "order.cancelled", order_id: order, recipient: { openid } });
  if (r < 30) return paidEvent({ event: "ticket.refunded", order_id: order, ticket_id: `T-${i % 3000}`, recipient: { openid, locale: "en" } });
  if (r < 33) return paidEvent({ order_id: `${order}-${i}`, recipient: { openid }, data: { amount: 1 } });
  return paidEvent({ order_id: `${order}-${i}`, recipient: { openid, locale: i % 3 ? "zh-CN" : "en-US" } });
}

async function publish(from: number, to: number): Promise<void> {
  const batch: Promise<unknown>[] = [];
  for (let i = from; i < to; i++) {
    const e = event(i);
    batch.push("bad" in e ? stack.js.publish(Subjects.event("order.paid"), e.bad, { msgID: `bad-${i}` }) : stack.publish(e));
    if (batch.length >= 200) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

/** The scan every answer is checked against: every revision of the bucket's stream, in order. */
async function scanBucket(bucket: string): Promise<{ key: string; seq: number; op: string; value: unknown; at: Date }[]> {
  const stream = kvStream(bucket);
  const last = (await stack.jsm.streams.info(stream)).state.last_seq;
  const out: { key: string; seq: number; op: string; value: unknown; at: Date }[] = [];
  if (last === 0) return out;
  const c = await stack.js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const it = await c.consume();
  for await (const m of it) {
    const op = m.headers?.get(HeaderNames.kvOperation) || "PUT";
    out.push({ key: m.subject.slice(kvSubjectPrefix(bucket).length), seq: m.seq, op, value: op === "PUT" ? decodeJson(m.data) : undefined, at: new Date(m.info.timestampNanos / 1e6) });
    if (m.seq >= last) break;
  }
  await it.close();
  return out;
}

interface Expected {
  row: SendRow;
  history: number[];
}

function expectedRows(scan: Awaited<ReturnType<typeof scanBucket>>): Map<string, Expected> {
  const out = new Map<string, Expected>();
  const deleted = new Set<string>();
  for (const m of scan) {
    const prev = out.get(m.key);
    const history = [...(prev?.history ?? []), m.seq];
    if (m.op !== "PUT") {
      deleted.add(m.key);
      continue;
    }
    deleted.delete(m.key);
    const r = m.value as SendRecord;
    const at = new Date(r.updated_at).toISOString();
    out.set(m.key, {
      history,
      row: {
        send_id: m.key,
        revision: m.seq,
        event_id: r.event_id,
        event: r.event,
        order_id: r.order_id,
        ticket_id: r.ticket_id,
        channel: r.channel,
        language: r.language,
        template_id: r.template_id,
        openid: r.openid,
        status: r.status,
        attempts: r.attempts,
        last_error: r.last_error ?? null,
        reason: r.reason ?? null,
        occurred_at: r.occurred_at ? new Date(r.occurred_at).toISOString() : null,
        sent_at: r.sent_at ? new Date(r.sent_at).toISOString() : null,
        receipt_status: r.receipt_status ?? null,
        receipt_at: r.receipt_at ? new Date(r.receipt_at).toISOString() : null,
        created_at: prev && prev.row.created_at < at ? prev.row.created_at : at,
        updated_at: at,
      },
    });
  }
  for (const k of deleted) out.delete(k);
  return out;
}

function matches(r: SendRow, f: SendFilter): boolean {
  for (const k of ["status", "event", "channel", "openid", "order_id", "ticket_id"] as const) if (f[k] !== undefined && r[k] !== f[k]) return false;
  if (f.created_from && r.created_at < f.created_from) return false;
  if (f.created_to && r.created_at >= f.created_to) return false;
  if (f.updated_from && r.updated_at < f.updated_from) return false;
  if (f.updated_to && r.updated_at >= f.updated_to) return false;
  return true;
}

const newestFirst = (a: SendRow, b: SendRow) => (a.created_at === b.created_at ? (a.send_id < b.send_id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1);

async function allPages(db: Db, f: SendFilter, limit: number): Promise<SendRow[]> {
  const out: SendRow[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await listSends(db, f, { limit, cursor });
    out.push(...page.items);
    if (!page.next_cursor) return out;
    cursor = page.next_cursor;
  }
  throw new Error("pagination did not end");
}

async function caughtUp(db: Db, what: string): Promise<void> {
  const streams = [Buckets.records, Buckets.templates, Buckets.locks].map(kvStream);
  await waitFor(
    async () => {
      for (const s of streams) {
        const last = (await stack.jsm.streams.info(s)).state.last_seq;
        const rows = await db.query<{ seq: unknown }>("SELECT seq FROM projector_offsets WHERE stream = $1", [s]);
        if (Number(rows[0]?.seq ?? 0) < last) return false;
      }
      return true;
    },
    `${what} to catch up`,
    300_000,
    200,
  );
}

// --- the run ---------------------------------------------------------------------------
const t0 = Date.now();
const step = (what: string) => t.comment(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
const procs: Record<Backend, ServiceProcess> = { postgres: startProjector("postgres"), pglite: startProjector("pglite") };
await Promise.all(Object.values(procs).map((p) => p.ready(300_000)));
step("projectors ready");
const half = Math.floor(EVENTS / 2);
await publish(0, half);
// Kill both mid-stream, without a drain, while the pipeline is still writing records.
await waitFor(async () => (await stack.jsm.streams.info(kvStream(Buckets.records))).state.last_seq > half / 2, "records to be written", 120_000, 50);
for (const p of Object.values(procs)) await p.kill("SIGKILL");
step("projectors killed");
const killedAt = (await stack.jsm.streams.info(kvStream(Buckets.records))).state.last_seq;
await publish(half, half + Math.floor(half / 2));
procs.postgres = startProjector("postgres");
procs.pglite = startProjector("pglite");
const readyLines = await Promise.all(Object.values(procs).map((p) => p.ready(300_000)));
step("projectors restarted");
await publish(half + Math.floor(half / 2), EVENTS);
step(`${EVENTS} events published`);
// Wait for the record stream to settle: every send final, or out of deliveries (no DLQ
// monitor runs here, so those stay `retrying`: a state the projection must mirror too).
let settled = -1;
await waitFor(
  async () => {
    const last = (await stack.jsm.streams.info(kvStream(Buckets.records))).state.last_seq;
    const same = last === settled;
    settled = last;
    return same;
  },
  "records to settle",
  900_000,
  6000,
);
step("pipeline settled");
// Each projector's /readyz tells its lag per stream; stop them once nothing is left.
for (const line of readyLines) {
  await waitFor(
    async () => {
      const r = (await (await fetch(`${String(line.metrics).replace(/\/metrics$/, "")}/readyz`)).json()) as { checks: { streams: { lag: number }[] } };
      return r.checks.streams.every((s) => s.lag === 0);
    },
    "the projectors to catch up",
    600_000,
    500,
  );
}
step("projectors caught up");
for (const p of Object.values(procs)) await p.stop();

const scan = await scanBucket(Buckets.records);
const expected = expectedRows(scan);
const rows = [...expected.values()].map((e) => e.row);

t.test("the pipeline produced every kind of record", async (t) => {
  const statuses = new Set(rows.map((r) => r.status));
  for (const s of ["success", "skipped", "rejected", "failed"]) t.ok(statuses.has(s), `some ${s}`);
  t.ok(rows.some((r) => r.openid === "oBlocked" && r.status === "failed" && r.reason === FailReason.permanent), "the blocked traveller's sends failed for good (43004)");
  // Attempts are WeChat calls: only the flaky traveller's first calls (-1) make a second one.
  t.ok(rows.some((r) => r.openid === "oFlaky" && r.status === "success" && r.attempts > 1), "some sends took more than one attempt");
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].map((s) => [s, rows.filter((r) => r.status === s).length])))}`);
  t.ok(killedAt > 0 && killedAt < scan[scan.length - 1]!.seq, `projectors killed at revision ${killedAt} of ${scan[scan.length - 1]!.seq}`);
  t.ok(rows.length >= EVENTS * 0.9, `${rows.length} send records for ${EVENTS} events`);
});

for (const b of Object.keys(backends) as Backend[]) {
  t.test(`${b}: after a SIGKILL and a restart, SQL holds exactly the bucket`, async (t) => {
    const db = b === "postgres" ? await openDb({ databaseUrl: pg.url }) : await openDb({ pgliteDir: liteDir });
    t.teardown(() => db.close());
    await migrate(db);
    await caughtUp(db, b);

    const all = await allPages(db, {}, 1000);
    t.equal(all.length, rows.length, "one row per send_id, none missing");
    t.equal(new Set(all.map((r) => r.send_id)).size, all.length, "no duplicates");
    const want = [...rows].sort(newestFirst);
    t.same(all, want, "every column of every row equals the KV record");

    const hist = await db.query<{ send_id: string; revision: unknown }>("SELECT send_id, revision FROM notification_event_history ORDER BY send_id, revision");
    const got = new Map<string, number[]>();
    for (const h of hist) got.set(h.send_id, [...(got.get(h.send_id) ?? []), Number(h.revision)]);
    let same = 0;
    for (const [id, e] of expected) if (JSON.stringify(got.get(id)) === JSON.stringify(e.history)) same++;
    t.equal(same, expected.size, "every status history holds exactly the KV revisions");
    t.equal(hist.length, scan.length, "no history row duplicated or lost");

    // Every filter, and the pairs operators combine, against the scan.
    const pick = <T>(xs: T[], n: number) => xs.filter((_, i) => i % Math.max(1, Math.floor(xs.length / n)) === 0).slice(0, n);
    const created = [...new Set(rows.map((r) => r.created_at))].sort();
    const updated = [...new Set(rows.map((r) => r.updated_at))].sort();
    const q = (xs: string[], p: number) => xs[Math.floor(xs.length * p)]!;
    const ranges: SendFilter[] = [
      { created_from: q(created, 0.25) },
      { created_to: q(created, 0.75) },
      { created_from: q(created, 0.25), created_to: q(created, 0.5) },
      { updated_from: q(updated, 0.4), updated_to: q(updated, 0.9) },
      { created_from: q(created, 0.1), updated_to: q(updated, 0.6) },
    ];
    const values = {
      status: [...new Set(rows.map((r) => r.status))],
      event: [...new Set(rows.map((r) => r.event))],
      channel: [...new Set(rows.map((r) => r.channel)), "sms"],
      openid: [...pick([...new Set(rows.map((r) => r.openid).filter((x): x is string => !!x))], 8), "oBlocked", "oFlaky", "nobody"],
      order_id: [...pick([...new Set(rows.map((r) => r.order_id).filter((x): x is string => !!x))], 8), "O-1"],
      ticket_id: pick([...new Set(rows.map((r) => r.ticket_id).filter((x): x is string => !!x))], 8),
    };
    const filters: SendFilter[] = [{}, ...ranges];
    for (const [k, vs] of Object.entries(values)) for (const v of vs) filters.push({ [k]: v });
    for (const s of values.status) {
      for (const e of values.event) filters.push({ status: s, event: e });
      for (const r of ranges) filters.push({ status: s, ...r });
      filters.push({ status: s, channel: "wechat", openid: "oBlocked" });
    }
    for (const e of values.event) for (const r of ranges.slice(0, 3)) filters.push({ event: e, ...r });
    for (const o of values.order_id.slice(0, 4)) filters.push({ order_id: o, event: "order.paid" }, { order_id: o, status: "success" });
    for (const o of values.openid.slice(0, 4)) filters.push({ openid: o, status: "success" }, { openid: o, ...ranges[2]! });
    let checked = 0;
    for (const f of filters) {
      const expect = rows.filter((r) => matches(r, f)).sort(newestFirst).map((r) => r.send_id);
      const got = (await allPages(db, f, f.status || f.event ? 700 : 97)).map((r) => r.send_id);
      if (JSON.stringify(got) !== JSON.stringify(expect)) t.fail(`filter ${JSON.stringify(f)}: ${got.length} rows, the scan has ${expect.length}`);
      else checked++;
    }
    t.equal(checked, filters.length, `${filters.length} filter combinations answer the scan's set, in order, across pages`);

    // Orders: every send with its history, newest first.
    for (const o of values.order_id.slice(0, 5)) {
      const { items } = await orderSends(db, o, 1000);
      const exp = rows.filter((r) => r.order_id === o).sort(newestFirst);
      t.same(items.map((i) => i.send_id), exp.map((r) => r.send_id), `order ${o}`);
      t.same(items.map((i) => i.history.map((h) => h.revision)), exp.map((r) => [...expected.get(r.send_id)!.history].reverse()), `order ${o}: histories newest first`);
    }

    // Stats by hour and by day over the whole run.
    const from = new Date(Date.parse(created[0]!) - 3600_000).toISOString();
    const to = new Date(Date.parse(created[created.length - 1]!) + 3600_000).toISOString();
    for (const interval of ["hour", "day"] as const) {
      const stats = await sendStats(db, { from, to, interval });
      const exp = new Map<string, number>();
      for (const r of rows) {
        const d = new Date(r.created_at);
        if (interval === "day") d.setUTCHours(0, 0, 0, 0);
        else d.setUTCMinutes(0, 0, 0);
        const k = [d.toISOString(), r.status, r.event, r.channel].join("|");
        exp.set(k, (exp.get(k) ?? 0) + 1);
      }
      t.same(new Map(stats.map((s) => [[s.start, s.status, s.event, s.channel].join("|"), s.count])), exp, `stats by ${interval}`);
    }

    // Templates and locks mirror their buckets too.
    const tplScan = await scanBucket(Buckets.templates);
    const tplRows = await db.query<{ key: string; revision: unknown }>("SELECT key, revision FROM notification_templates ORDER BY revision");
    t.same(tplRows.map((r) => [r.key, Number(r.revision)]), tplScan.map((m) => [m.key, m.seq]), "every template revision");
    const lockKeys: string[] = [];
    for await (const k of await stack.topo.buckets.locks.keys()) lockKeys.push(k);
    const locks = await db.query<{ lock_key: string }>("SELECT lock_key FROM notification_locks WHERE NOT deleted ORDER BY lock_key");
    t.same(locks.map((l) => l.lock_key), lockKeys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), "every claim");
  });
}

t.test("a rebuild from empty gives the same rows as the incremental run, on both databases", async (t) => {
  const dump = async (db: Db) =>
    JSON.stringify([
      await db.query("SELECT send_id, revision, event_id, event, order_id, ticket_id, channel, language, template_id, openid, status, attempts, last_error, reason, occurred_at, sent_at, created_at, updated_at, deleted, record FROM notification_events ORDER BY send_id"),
      await db.query("SELECT * FROM notification_event_history ORDER BY send_id, revision"),
      await db.query("SELECT * FROM notification_templates ORDER BY key, revision"),
      await db.query("SELECT lock_key, revision, send_id, event_id, claimed_at, deleted FROM notification_locks ORDER BY lock_key"),
    ]);
  for (const b of Object.keys(backends) as Backend[]) {
    const db = b === "postgres" ? await openDb({ databaseUrl: pg.url }) : await openDb({ pgliteDir: liteDir });
    const incremental = await dump(db);
    // Rebuild in place with the projector's own consumers: the tables are emptied first.
    const projector = new Projector({ js: stack.js, jsm: stack.jsm, db, log, name: b === "postgres" ? "eq-pg" : "eq-lite", batchSize: 1000 });
    await projector.start({ rebuild: true });
    await projector.caughtUp(300_000);
    await projector.stop();
    const rebuilt = await dump(db);
    t.equal(rebuilt.length > 1000, true, `${b}: the dump is not empty`);
    t.ok(rebuilt === incremental, `${b}: rebuilt rows equal the incremental ones (${rebuilt.length} bytes)`);
    await db.close();
  }
});

// A stray bucket write the projector must survive: not JSON at all.
t.test("a value that is not a record is kept in the history and does not stop the projector", async (t) => {
  const db = await openDb({ pgliteDir: "memory://" });
  t.teardown(() => db.close());
  await migrate(db);
  await stack.topo.buckets.records.put("snd_garbage", new TextEncoder().encode("{not json"));
  await stack.topo.buckets.records.put("snd_after", encodeJson({ ...rows[0]!, send_id: "snd_after" }));
  const projector = new Projector({ js: stack.js, jsm: stack.jsm, db, log, name: "eq-garbage", buckets: [Buckets.records] });
  await projector.start();
  await projector.caughtUp(120_000);
  await projector.stop();
  const got = await db.query<{ send_id: string; deleted: boolean }>("SELECT send_id, deleted FROM notification_events WHERE send_id IN ('snd_garbage', 'snd_after') ORDER BY send_id");
  t.same(got, [{ send_id: "snd_after", deleted: false }, { send_id: "snd_garbage", deleted: true }]);
});
