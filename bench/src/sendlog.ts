/**
 * The SQL send log's section of `npm run bench` (`npm run bench -- sendlog` runs it alone):
 * projection lag and keeping up, filtered searches over a million rows, and the template
 * routes against a bare Fastify baseline. Every figure comes with its same-run reference;
 * targets are reported, never asserted. bench/README.md says how each is measured.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { DeliverPolicy } from "@nats-io/jetstream";
import { Buckets, kvStream, type EventEnvelope } from "@notify/contracts";
import { NatsServer } from "@notify/nats-server";
import { listSends, migrate, openDb, sendStats, type Db, type SendFilter } from "@notify/sendlog";
import { postgresBin, startPostgres, type PostgresServer } from "@notify/sendlog/postgres-server";
import { metricsUrl, root, spawnNode, track, untrack, type Proc } from "./procs.js";
import { PipelineTrial, readStream, type Shape } from "./systems.js";
import { cpuSeconds, median, now, round, sleep, summarize, table, type LatencySummary } from "./util.js";

export interface SendlogBenchConfig {
  shape: Shape;
  nodeArgs: string[];
  /** Rows seeded for the search figures. */
  rows: number;
  /** Paced rate and measured seconds of the projection-lag run. */
  lagRate: number;
  lagSeconds: number;
  /** Events published at once for the keeping-up run. */
  saturationN: number;
  /** Per query kind: a light paced load (the figure is latency, not capacity). */
  queryRate: number;
  querySeconds: number;
  /** Template routes: seconds per throughput trial and per paced run, the paced rate, rounds. */
  httpSeconds: number;
  httpRate: number;
  rounds: number;
  /** Parts run: `projection`, `searches`, `templates`; databases: `postgres`, `pglite`. */
  parts: string[];
  dbs: string[];
  log: (msg: string) => void;
}

export interface Target {
  target: string;
  value: string;
  pass: boolean;
}

type Kind = "postgres" | "pglite";
const API_KEY = "bench-sendlog-key";
const RECORDS_STREAM = kvStream(Buckets.records);

// ---------------------------------------------------------------- processes

function startProjectorProc(natsUrl: string, dbEnv: Record<string, string>, nodeArgs: string[]): Proc {
  // PROJECTOR_* settings in the bench's environment reach the projector (tuning runs).
  const tuning = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("PROJECTOR_") && e[1] !== undefined));
  return spawnNode(
    "projector",
    path.join(root, "services/projector/dist/main.js"),
    { NATS_URL: natsUrl, METRICS_PORT: "0", METRICS_HOST: "127.0.0.1", LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info", ...tuning, PROJECTOR_NAME: "bench", ...dbEnv },
    /"msg":"projector ready"/,
    nodeArgs,
  );
}

/** The gateway as operators run it; resolves with its base URL once the send log answers. */
async function startGateway(natsUrl: string, dbEnv: Record<string, string>, nodeArgs: string[] = []): Promise<{ proc: Proc; base: string }> {
  const proc = spawnNode(
    "gateway",
    path.join(root, "services/gateway/dist/main.js"),
    // The per-key rate limit stays on (its cost is part of the route) but above what the bench asks.
    { NATS_URL: natsUrl, GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: "0", GATEWAY_API_KEYS: API_KEY, GATEWAY_RATE_LIMIT: "100000000", LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info", ...dbEnv },
    /"msg":"gateway ready"/,
    nodeArgs,
  );
  const line = await proc.waitReady(120_000);
  const base = String((JSON.parse(line) as { docs: string }).docs).replace(/\/docs$/, "");
  // The send log opens after the gateway listens (PGlite takes seconds): wait for it.
  const deadline = Date.now() + 300_000;
  for (;;) {
    const r = await fetch(`${base}/notifications/sends?limit=1`, { headers: auth() }).catch(() => null);
    if (r?.ok) break;
    if (Date.now() > deadline) throw new Error(`gateway send log not ready: ${r?.status} ${await r?.text()}`);
    await sleep(250);
  }
  return { proc, base };
}

const auth = () => ({ authorization: `Bearer ${API_KEY}` });

async function createDatabase(pg: PostgresServer, name: string): Promise<string> {
  const admin = await openDb({ databaseUrl: pg.url, poolSize: 1 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.close();
  }
  const url = pg.url.replace(/\/[^/]*$/, `/${name}`);
  // Migrated up front, as the projector service leaves a database (the gateway only reads one).
  const db = await openDb({ databaseUrl: url, poolSize: 1 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return url;
}

// ---------------------------------------------------------------- 1: projection lag and keeping up

/** Polls the projector's /readyz: when did the records stream's committed position reach each sequence. */
class CommitPoller {
  readonly samples: { at: number; committed: number; last: number }[] = [];
  private stopped = false;
  private loop: Promise<void>;

  constructor(
    private readonly readyz: string,
    everyMs = 25,
  ) {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const body = (await (await fetch(this.readyz)).json()) as { checks?: { streams?: { stream: string; committed: number; last: number }[] } };
          const s = body.checks?.streams?.find((x) => x.stream === RECORDS_STREAM);
          if (s) this.samples.push({ at: now(), committed: s.committed, last: s.last });
        } catch {
          /* a busy projector: try again */
        }
        await sleep(everyMs);
      }
    })();
  }

  /** First time the committed position was seen at or past `seq` (an upper bound: poll resolution). */
  commitTime(seq: number): number {
    let lo = 0;
    let hi = this.samples.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.samples[mid]!.committed >= seq) hi = mid;
      else lo = mid + 1;
    }
    return this.samples[lo]?.at ?? Number.NaN;
  }

  async until(seq: number, timeoutMs = 300_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while ((this.samples.at(-1)?.committed ?? 0) < seq) {
      if (Date.now() > deadline) throw new Error(`projector stuck at ${this.samples.at(-1)?.committed} of ${seq}`);
      await sleep(20);
    }
    return this.commitTime(seq);
  }

  maxLag(from: number, to: number): number {
    return Math.max(0, ...this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.last - s.committed));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

let seq = 0;
const runId = Math.random().toString(36).slice(2, 8);
function event(): EventEnvelope {
  const n = ++seq;
  return {
    id: `evt_sl_${runId}_${n}`,
    event: "order.paid",
    occurred_at: new Date().toISOString(),
    order_id: `O-sl-${runId}-${n}`,
    ticket_id: null,
    recipient: { openid: `osl${runId}${n % 5000}`, locale: "zh-CN" },
    data: { amount: 128.5, title: "West Lake night tour" },
  };
}

async function waitCompleted(trial: PipelineTrial, target: number, stallMs = 60_000): Promise<number> {
  let last = -1;
  let movedAt = Date.now();
  for (;;) {
    const p = await trial.progress();
    if (p.count >= target) return p.lastAt;
    if (p.count !== last) [last, movedAt] = [p.count, Date.now()];
    else if (Date.now() - movedAt > stallMs) throw new Error(`pipeline stuck at ${p.count} of ${target}`);
    await sleep(50);
  }
}

/** Publishes at `rate`/s for `seconds`; each event stamped just before its publish. */
async function paced(trial: PipelineTrial, rate: number, seconds: number, t0: Map<string, number>): Promise<EventEnvelope[]> {
  const total = Math.round(rate * seconds);
  const evs: EventEnvelope[] = [];
  let failed: unknown = null;
  const start = now();
  while (evs.length < total) {
    const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
    while (evs.length < due) {
      const e = event();
      evs.push(e);
      t0.set(e.order_id, now());
      trial.publish(e).catch((err: unknown) => (failed = err));
    }
    if (failed) throw failed;
    await sleep(1);
  }
  return evs;
}

/** Store time (epoch ms) of every records-stream revision after `afterSeq`. */
async function revisionTimes(trial: PipelineTrial, afterSeq: number): Promise<{ seq: number; at: number }[]> {
  const out: { seq: number; at: number }[] = [];
  await readStream(trial.js, trial.jsm, RECORDS_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 }, (m) => out.push({ seq: m.seq, at: m.info.timestampNanos / 1e6 }));
  return out;
}

export interface ProjectionResult {
  db: Kind;
  rate: number;
  seconds: number;
  revisions: number;
  lag_ms: LatencySummary;
  pipeline_recorded_ms: LatencySummary;
  /** The projector process's CPU over the paced window, in cores (PostgreSQL's own server not counted). */
  projector_cores: number;
  saturation: {
    events: number;
    pipeline_per_second: number;
    revisions: number;
    written_per_second: number;
    committed_per_second: number;
    keep_up_ratio: number;
    catch_up_ms: number;
    max_lag_revisions: number;
    lag_ms: LatencySummary;
  };
}

async function projection(cfg: SendlogBenchConfig, kind: Kind, pg: PostgresServer | null): Promise<ProjectionResult> {
  const trial = await PipelineTrial.start({ ...cfg.shape, nodeArgs: cfg.nodeArgs });
  const liteDir = kind === "pglite" ? mkdtempSync(path.join(tmpdir(), "bench-sendlog-")) : null;
  let proj: Proc | null = null;
  let poll: CommitPoller | null = null;
  try {
    const dbEnv: Record<string, string> = pg ? { DATABASE_URL: await createDatabase(pg, "bench_projection") } : { SENDLOG_PGLITE_DIR: liteDir! };
    proj = startProjectorProc(trial.server.url, dbEnv, cfg.nodeArgs);
    poll = new CommitPoller(metricsUrl(await proj.waitReady(120_000)).replace(/\/metrics$/, "/readyz"));

    // (a) Paced: a 3 s warm-up, then the measured window.
    const warmT0 = new Map<string, number>();
    const warm = await paced(trial, cfg.lagRate, 3, warmT0);
    await waitCompleted(trial, warm.length);
    const before = (await trial.jsm.streams.info(RECORDS_STREAM)).state.last_seq;
    await poll.until(before);
    const t0 = new Map<string, number>();
    const [cpu0, at0] = [cpuSeconds(proj.pid), now()];
    const evs = await paced(trial, cfg.lagRate, cfg.lagSeconds, t0);
    await waitCompleted(trial, warm.length + evs.length);
    const after = (await trial.jsm.streams.info(RECORDS_STREAM)).state.last_seq;
    await poll.until(after);
    const projectorCores = round((cpuSeconds(proj.pid) - cpu0) / ((now() - at0) / 1000), 2);
    const revs = await revisionTimes(trial, before);
    const lags = revs.filter((r) => r.seq <= after).map((r) => poll!.commitTime(r.seq) - r.at);
    // The same run's pipeline: published → the record at success (the `sent` fact's store time).
    trial.learnKeys(evs.map((e) => e.order_id));
    const recorded = await trial.recordedAt();
    const pipe = [...t0].flatMap(([k, at]) => (recorded.has(k) ? [recorded.get(k)! - at] : []));
    cfg.log(`sendlog ${kind}: projection lag at ${cfg.lagRate}/s over ${revs.length} revisions: ${JSON.stringify(summarize(lags))}`);

    // (b) Saturation: N events as fast as the pipeline takes them, the projector following.
    const satBefore = after;
    const satEvents = Array.from({ length: cfg.saturationN }, event);
    const satStart = now();
    await trial.publishMany(satEvents);
    const lastSent = await waitCompleted(trial, warm.length + evs.length + satEvents.length);
    const info = await trial.jsm.streams.info(RECORDS_STREAM);
    const satLast = info.state.last_seq;
    const lastWrite = Date.parse(info.state.last_ts);
    const doneAt = await poll.until(satLast);
    const satRevs = (await revisionTimes(trial, satBefore)).filter((r) => r.seq <= satLast);
    const n = satLast - satBefore;
    const written = n / ((lastWrite - satStart) / 1000);
    const committed = n / ((doneAt - satStart) / 1000);
    const result: ProjectionResult = {
      db: kind,
      rate: cfg.lagRate,
      seconds: cfg.lagSeconds,
      revisions: lags.length,
      lag_ms: summarize(lags),
      pipeline_recorded_ms: summarize(pipe),
      projector_cores: projectorCores,
      saturation: {
        events: satEvents.length,
        pipeline_per_second: round(satEvents.length / ((lastSent - satStart) / 1000)),
        revisions: n,
        written_per_second: round(written),
        committed_per_second: round(committed),
        keep_up_ratio: round(committed / written, 3),
        catch_up_ms: round(Math.max(0, doneAt - lastWrite)),
        max_lag_revisions: poll.maxLag(satStart, doneAt),
        lag_ms: summarize(satRevs.map((r) => poll!.commitTime(r.seq) - r.at)),
      },
    };
    cfg.log(`sendlog ${kind}: saturation ${JSON.stringify(result.saturation)}`);
    return result;
  } finally {
    await poll?.stop();
    await proj?.stop();
    await trial.stop();
    if (liteDir) rmSync(liteDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- 2: searches over a million rows

const DAY = 86_400_000;
const SEED_DAYS = 30;
const ORDERS = 400_000;
const TRAVELLERS = 50_000;

/**
 * `rows` send records in one INSERT … SELECT generate_series per 100,000 (the indexes in
 * place, as the migrations leave them), spread over 30 days in an order unrelated to
 * send_id: 80% success, 5% delivered, 5% failed, 3% skipped, 3% rejected, 2% retrying,
 * 2% dead; four events, one send in ten by SMS, ~20 sends per traveller, ~2.5 per order.
 */
async function seed(db: Db, rows: number, end: number, log: (m: string) => void): Promise<void> {
  await migrate(db);
  const started = now();
  const chunk = 100_000;
  const spacing = (SEED_DAYS * DAY) / 1000 / rows;
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await db.query(
      `WITH s AS (
         SELECT g,
                'snd_' || lpad(to_hex(g), 12, '0') AS send_id,
                (ARRAY['order.paid','ticket.refunded','order.cancelled','ticket.issued'])[1 + g % 4] AS event,
                CASE WHEN g % 100 < 80 THEN 'success' WHEN g % 100 < 85 THEN 'delivered' WHEN g % 100 < 90 THEN 'failed'
                     WHEN g % 100 < 93 THEN 'skipped' WHEN g % 100 < 96 THEN 'rejected' WHEN g % 100 < 98 THEN 'retrying' ELSE 'dead' END AS status,
                CASE WHEN g % 10 = 3 THEN 'sms' ELSE 'wechat' END AS channel,
                'O-' || (g % ${ORDERS}) AS order_id,
                CASE WHEN g % 4 = 1 THEN 'T-' || (g % 300000) END AS ticket_id,
                'o' || (g % ${TRAVELLERS}) AS openid,
                to_timestamp($3::float8 - ((g::bigint * 7919) % $4::bigint) * $5::float8) AS created_at
           FROM generate_series($1::int, $2::int) AS g)
       INSERT INTO notification_events (send_id, revision, event_id, event, order_id, ticket_id, channel, language, template_id, openid,
                                        status, attempts, last_error, reason, occurred_at, sent_at, created_at, updated_at, record)
       SELECT send_id, g, 'evt_' || g, event, order_id, ticket_id, channel, 'zh-CN', 'TPL_' || event, openid,
              status, 1 + (g % 3), CASE WHEN status IN ('failed', 'dead') THEN 'errcode 43101: user refused' END,
              CASE WHEN status = 'skipped' THEN 'no_template' END, created_at, CASE WHEN status IN ('success', 'delivered') THEN created_at + interval '1 second' END,
              created_at, created_at + make_interval(secs => g % 60),
              jsonb_build_object('send_id', send_id, 'event', event, 'status', status, 'order_id', order_id, 'ticket_id', ticket_id, 'channel', channel,
                                 'openid', openid, 'attempts', 1 + (g % 3), 'updated_at', created_at)
         FROM s`,
      [from, to, end / 1000, rows, spacing],
    );
  }
  await db.exec("ANALYZE notification_events");
  log(`sendlog: seeded ${rows} rows into ${db.kind} in ${round((now() - started) / 1000, 1)} s`);
}

interface QueryKind {
  name: string;
  /** Variants, cycled through (different values hit different index ranges). */
  variants: { filter: SendFilter; cursor?: string }[];
}

function queryKinds(end: number, cursors: string[]): QueryKind[] {
  const iso = (ms: number) => new Date(ms).toISOString();
  const v = (f: (i: number) => SendFilter) => Array.from({ length: 20 }, (_, i) => ({ filter: f(i) }));
  return [
    { name: "status=failed", variants: v(() => ({ status: "failed" })) },
    { name: "failed in the last hour (status + updated_from)", variants: v((i) => ({ status: "failed", updated_from: iso(end - 3_600_000 - i * 86_400_000) })) },
    { name: "order_id", variants: v((i) => ({ order_id: `O-${(i * 7907) % ORDERS}` })) },
    { name: "openid + status", variants: v((i) => ({ openid: `o${(i * 104_729) % TRAVELLERS}`, status: "success" })) },
    { name: "ticket_id", variants: v((i) => ({ ticket_id: `T-${((i * 7919) % 75_000) * 4 + 1}` })) },
    { name: "channel=sms, one day", variants: v((i) => ({ channel: "sms", created_from: iso(end - (i + 2) * DAY), created_to: iso(end - (i + 1) * DAY) })) },
    { name: "event + status, 7 days", variants: v(() => ({ event: "ticket.refunded", status: "failed", created_from: iso(end - 7 * DAY) })) },
    { name: "status=success, deep page (cursor)", variants: cursors.map((cursor) => ({ filter: { status: "success" }, cursor })) },
  ];
}

const searchPath = (q: { filter: SendFilter; cursor?: string }) => {
  const p = new URLSearchParams({ ...(q.filter as Record<string, string>), limit: "50" });
  if (q.cursor) p.set("cursor", q.cursor);
  return `/notifications/sends?${p}`;
};

/** Keyset cursors 10, 20, … pages deep into status=success. */
async function deepCursors(db: Db): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  for (let page = 1; out.length < 10; page++) {
    const r = await listSends(db, { status: "success" }, { limit: 50, cursor });
    if (!r.next_cursor) break;
    cursor = r.next_cursor;
    if (page % 10 === 0) out.push(cursor);
  }
  return out;
}

/** Each kind through the library alone, one at a time: what the SQL costs without HTTP. */
async function sqlAlone(db: Db, kinds: QueryKind[], statsFrom: string, statsTo: string): Promise<Record<string, LatencySummary>> {
  const out: Record<string, LatencySummary> = {};
  for (const k of kinds) {
    const lat: number[] = [];
    for (let i = 0; i < 60; i++) {
      const q = k.variants[i % k.variants.length]!;
      const t = now();
      await listSends(db, q.filter, { limit: 50, cursor: q.cursor });
      lat.push(now() - t);
    }
    out[k.name] = summarize(lat.slice(10));
  }
  const lat: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = now();
    await sendStats(db, { from: statsFrom, to: statsTo, interval: "hour" });
    lat.push(now() - t);
  }
  out.stats = summarize(lat.slice(5));
  return out;
}

interface CannonResult {
  per_second: number;
  latency_ms: LatencySummary;
  non2xx: number;
  errors: number;
}

/** autocannon against `base`; every response's time is kept (autocannon's own summary has no p95). */
function cannon(base: string, requests: autocannon.Request[], opts: { connections: number; seconds: number; rate?: number }): Promise<CannonResult> {
  return new Promise((resolve, reject) => {
    const lat: number[] = [];
    const inst = autocannon(
      { url: base, connections: opts.connections, duration: opts.seconds, requests, ...(opts.rate ? { overallRate: opts.rate } : {}) },
      (err: unknown, r: autocannon.Result) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        resolve({ per_second: round(r.requests.total / opts.seconds), latency_ms: summarize(lat), non2xx: r.non2xx, errors: r.errors + r.timeouts });
      },
    );
    inst.on("response", (_c: unknown, _status: number, _bytes: number, ms: number) => lat.push(ms));
  });
}

export interface SearchResult {
  db: Kind;
  rows: number;
  kinds: { name: string; http: CannonResult; sql_alone: LatencySummary }[];
}

async function searches(cfg: SendlogBenchConfig, kind: Kind, db: Db, dbEnv: Record<string, string>, nats: NatsServer, end: number): Promise<SearchResult> {
  const kinds = queryKinds(end, await deepCursors(db));
  const statsFrom = new Date(end - 2 * DAY).toISOString();
  const statsTo = new Date(end - DAY).toISOString();
  const alone = await sqlAlone(db, kinds, statsFrom, statsTo);
  // PGlite is one process's store: the gateway opens it after the bench lets go.
  if (kind === "pglite") await db.close();
  const gw = await startGateway(nats.url, dbEnv);
  try {
    const out: SearchResult["kinds"] = [];
    const all = [...kinds.map((k) => ({ name: k.name, paths: k.variants.map(searchPath) })), { name: "stats", paths: [`/notifications/sends/stats?from=${statsFrom}&to=${statsTo}&interval=hour`] }];
    for (const k of all) {
      const http = await cannon(gw.base, k.paths.map((p) => ({ method: "GET", path: p, headers: auth() })), { connections: 4, seconds: cfg.querySeconds, rate: cfg.queryRate });
      cfg.log(`sendlog ${kind}: GET ${k.name}: ${JSON.stringify(http)}`);
      out.push({ name: k.name, http, sql_alone: alone[k.name]! });
    }
    return { db: kind, rows: cfg.rows, kinds: out };
  } finally {
    await gw.proc.stop();
  }
}

// ---------------------------------------------------------------- 3: template list and preview

export interface TemplateRouteResult {
  route: string;
  rounds: { gateway: number; bare: number; ratio: number }[];
  ratio: number;
  paced: { gateway: CannonResult; bare: CannonResult };
}

const PREVIEW_BODY = JSON.stringify({ event: "order.paid", language: "zh-CN", openid: "oBench", order_id: "O-1001", data: { amount: 128.5, title: "West Lake night tour" } });

async function templateRoutes(cfg: SendlogBenchConfig, gatewayBase: string): Promise<TemplateRouteResult[]> {
  // The example templates an `npm start` seeds, written through the gateway.
  const templates = JSON.parse(readFileSync(path.join(root, "scripts/example-templates.json"), "utf8")) as unknown[];
  for (const t of templates) {
    const r = await fetch(`${gatewayBase}/notifications/templates`, { method: "POST", headers: { ...auth(), "content-type": "application/json" }, body: JSON.stringify(t) });
    if (!r.ok) throw new Error(`seeding a template failed: ${r.status} ${await r.text()}`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), "bench-bare-"));
  const listRes = await fetch(`${gatewayBase}/notifications/templates`, { headers: auth() });
  const previewRes = await fetch(`${gatewayBase}/notifications/preview`, { method: "POST", headers: { ...auth(), "content-type": "application/json" }, body: PREVIEW_BODY });
  if (!listRes.ok || !previewRes.ok) throw new Error(`template routes answered ${listRes.status} / ${previewRes.status}`);
  writeFileSync(path.join(dir, "list.json"), await listRes.text());
  writeFileSync(path.join(dir, "preview.json"), await previewRes.text());
  const bare = spawnNode("bare-fastify", path.join(root, "bench/dist/bare-json.js"), { BARE_LIST_JSON: path.join(dir, "list.json"), BARE_PREVIEW_JSON: path.join(dir, "preview.json") }, /bare fastify listening/, cfg.nodeArgs);
  try {
    const bareBase = String((JSON.parse(await bare.waitReady()) as { url: string }).url);
    const routes = [
      { route: "GET /notifications/templates", req: (withAuth: boolean): autocannon.Request => ({ method: "GET", path: "/notifications/templates", headers: withAuth ? auth() : {} }) },
      {
        route: "POST /notifications/preview",
        req: (withAuth: boolean): autocannon.Request => ({ method: "POST", path: "/notifications/preview", headers: { ...(withAuth ? auth() : {}), "content-type": "application/json" }, body: PREVIEW_BODY }),
      },
    ];
    const out: TemplateRouteResult[] = [];
    for (const r of routes) {
      const gw = (o: { connections: number; seconds: number; rate?: number }) => cannon(gatewayBase, [r.req(true)], o);
      const bb = (o: { connections: number; seconds: number; rate?: number }) => cannon(bareBase, [r.req(false)], o);
      // Throughput, paired per round, the order alternating.
      const rounds: TemplateRouteResult["rounds"] = [];
      for (let i = 0; i < cfg.rounds; i++) {
        const o = { connections: 16, seconds: cfg.httpSeconds };
        let g: CannonResult;
        let b: CannonResult;
        if (i % 2) [b, g] = [await bb(o), await gw(o)];
        else [g, b] = [await gw(o), await bb(o)];
        rounds.push({ gateway: g.per_second, bare: b.per_second, ratio: round(g.per_second / b.per_second, 3) });
        cfg.log(`sendlog: ${r.route} round ${i + 1}: gateway ${g.per_second}/s (non-2xx ${g.non2xx}), bare ${b.per_second}/s`);
      }
      const paced = { connections: 32, seconds: cfg.httpSeconds, rate: cfg.httpRate };
      const pg = await gw(paced);
      const pb = await bb(paced);
      cfg.log(`sendlog: ${r.route} at ${cfg.httpRate}/s: gateway ${JSON.stringify(pg)}, bare ${JSON.stringify(pb)}`);
      out.push({ route: r.route, rounds, ratio: median(rounds.map((x) => x.ratio)), paced: { gateway: pg, bare: pb } });
    }
    return out;
  } finally {
    await bare.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the section

export async function sendlogSection(cfg: SendlogBenchConfig): Promise<{ report: Record<string, unknown>; lines: string[]; targets: Target[]; problems: string[] }> {
  const problems: string[] = [];
  const targets: Target[] = [];
  const lines: string[] = [];
  const pg = cfg.dbs.includes("postgres") && postgresBin() ? await startPostgres() : null;
  if (!pg && cfg.dbs.includes("postgres")) cfg.log("sendlog: no PostgreSQL server binaries (apt-get install postgresql): PGlite only");
  const kinds = (["postgres", "pglite"] as Kind[]).filter((k) => cfg.dbs.includes(k) && (k !== "postgres" || pg));
  const report: Record<string, unknown> = {};
  try {
    // 1. Projection.
    const proj: ProjectionResult[] = [];
    if (cfg.parts.includes("projection")) for (const k of kinds) proj.push(await projection(cfg, k, k === "postgres" ? pg : null));
    if (proj.length > 0) report.projection = proj;
    if (proj.length > 0) lines.push(
      `Send log projection: the pipeline at ${cfg.lagRate} events/s for ${cfg.lagSeconds} s (after 3 s of warm-up), the projector (its own process) following; lag = a records-stream revision stored → committed in SQL (the projector's /readyz polled every 25 ms: an upper bound). Reference from the same run: the pipeline's own published → record at success; projector cores = its process's CPU over the paced window (PostgreSQL's server not counted). Then ${cfg.saturationN} events at once: the projector's committed rate over the pipeline's write rate (1 = kept pace), and how long after the last KV write it was done.`,
      table(
        ["database", "revisions", "lag p50 ms", "p95", "p99", "max", "pipeline p99 ms (ref.)", "projector cores", "sat. events/s", "KV writes/s", "committed/s", "kept pace", "catch-up ms", "max lag (revisions)", "sat. lag p99 ms"],
        proj.map((p) => [p.db, p.revisions, p.lag_ms.p50, p.lag_ms.p95, p.lag_ms.p99, p.lag_ms.max, p.pipeline_recorded_ms.p99, p.projector_cores, p.saturation.pipeline_per_second, p.saturation.written_per_second, p.saturation.committed_per_second, p.saturation.keep_up_ratio, p.saturation.catch_up_ms, p.saturation.max_lag_revisions, p.saturation.lag_ms.p99]),
      ),
      "",
    );
    for (const p of proj) {
      targets.push({ target: `projection lag p99 < 1 s at ${cfg.lagRate} events/s (${p.db})`, value: `${p.lag_ms.p99} ms`, pass: p.lag_ms.p99 < 1000 });
      targets.push({ target: `projector keeps up at saturation (${p.db}): done ≤ 1 s after the last KV write`, value: `${p.saturation.catch_up_ms} ms after; ${p.saturation.keep_up_ratio} of the write rate`, pass: p.saturation.catch_up_ms <= 1000 });
    }

    // 2. Searches.
    const end = Date.now();
    const nats = await NatsServer.start();
    track(nats.pid);
    try {
      const res: SearchResult[] = [];
      for (const k of cfg.parts.includes("searches") ? kinds : []) {
        const liteDir = k === "pglite" ? mkdtempSync(path.join(tmpdir(), "bench-sendlog-rows-")) : null;
        try {
          const url = k === "postgres" ? await createDatabase(pg!, "bench_search") : null;
          const db = url ? await openDb({ databaseUrl: url }) : await openDb({ pgliteDir: liteDir! });
          try {
            await seed(db, cfg.rows, end, cfg.log);
            res.push(await searches(cfg, k, db, url ? { DATABASE_URL: url } : { SENDLOG_PGLITE_DIR: liteDir! }, nats, end));
          } finally {
            await db.close().catch(() => undefined);
          }
        } finally {
          if (liteDir) rmSync(liteDir, { recursive: true, force: true });
        }
      }
      if (res.length > 0) report.searches = res;
      if (res.length > 0) lines.push(
        `Send log searches over ${cfg.rows.toLocaleString("en")} rows: GET /notifications/sends (limit 50) through the gateway, each kind at ${cfg.queryRate} requests/s for ${cfg.querySeconds} s over 4 connections (20 values cycled); "SQL alone" = the same query through @notify/sendlog in the bench, one at a time (the reference: what HTTP and the gateway add)`,
        table(
          ["database", "query", "p50 ms", "p95 ms", "p99 ms", "SQL alone p95 ms", "p95 / SQL alone", "non-2xx"],
          res.flatMap((r) => r.kinds.map((k) => [r.db, k.name, k.http.latency_ms.p50, k.http.latency_ms.p95, k.http.latency_ms.p99, k.sql_alone.p95, round(k.http.latency_ms.p95 / k.sql_alone.p95, 2), k.http.non2xx + k.http.errors])),
        ),
        "",
      );
      for (const r of res) {
        const filtered = r.kinds.filter((k) => k.name !== "stats");
        const worst = filtered.reduce((a, b) => (b.http.latency_ms.p95 > a.http.latency_ms.p95 ? b : a));
        targets.push({ target: `GET /notifications/sends filtered p95 < 50 ms over ${cfg.rows.toLocaleString("en")} rows (${r.db}, worst kind)`, value: `${worst.http.latency_ms.p95} ms (${worst.name})`, pass: worst.http.latency_ms.p95 < 50 });
        for (const k of r.kinds) if (k.http.non2xx + k.http.errors > 0) problems.push(`sendlog ${r.db} ${k.name}: ${k.http.non2xx} non-2xx, ${k.http.errors} errors`);
      }

      // 3. Template routes, on the production configuration's gateway.
      if (!cfg.parts.includes("templates")) return { report, lines, targets, problems };
      const gw = await startGateway(nats.url, pg ? { DATABASE_URL: await createDatabase(pg, "bench_templates") } : { SENDLOG: "off" }, cfg.nodeArgs);
      try {
        const tr = await templateRoutes(cfg, gw.base);
        report.templates = tr;
        lines.push(
          `Template routes: the gateway (auth, rate limit, schemas, logging; the watched template cache) against a bare Fastify route returning the same JSON, both processes, in the same run. Throughput: 16 connections for ${cfg.httpSeconds} s, ${cfg.rounds} paired round(s); latency: ${cfg.httpRate} requests/s for ${cfg.httpSeconds} s over 32 connections`,
          table(
            ["route", "gateway /s per round", "bare /s per round", "ratio (median)", `gateway p95 ms at ${cfg.httpRate}/s`, "p99", "achieved /s", `bare p95 ms at ${cfg.httpRate}/s`, "non-2xx"],
            tr.map((r) => [r.route, r.rounds.map((x) => x.gateway).join("/"), r.rounds.map((x) => x.bare).join("/"), r.ratio, r.paced.gateway.latency_ms.p95, r.paced.gateway.latency_ms.p99, r.paced.gateway.per_second, r.paced.bare.latency_ms.p95, r.paced.gateway.non2xx + r.paced.gateway.errors]),
          ),
          "",
        );
        for (const r of tr) {
          targets.push({ target: `${r.route} throughput ≥ 0.7 of a bare Fastify route`, value: String(r.ratio), pass: r.ratio >= 0.7 });
          targets.push({ target: `${r.route} p95 < 20 ms at ${cfg.httpRate} requests/s`, value: `${r.paced.gateway.latency_ms.p95} ms (${r.paced.gateway.per_second}/s achieved)`, pass: r.paced.gateway.latency_ms.p95 < 20 });
          if (r.paced.gateway.non2xx + r.paced.gateway.errors > 0) problems.push(`sendlog ${r.route}: ${r.paced.gateway.non2xx} non-2xx, ${r.paced.gateway.errors} errors`);
        }
      } finally {
        await gw.proc.stop();
      }
    } finally {
      await nats.stop();
      untrack(nats.pid);
    }
  } finally {
    await pg?.stop();
  }
  return { report, lines, targets, problems };
}
