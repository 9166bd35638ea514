import { Buckets, type LockValue, type SendRecord, type Template } from "@notify/contracts";
import type { Queryable } from "./db.js";

/** One KV change as read from a bucket's stream (`KV_<bucket>`). */
export interface KvChange {
  bucket: string;
  key: string;
  /** The bucket stream's sequence: the KV revision. */
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  /** The stored bytes, parsed as JSON; undefined for DEL/PURGE or a value that is not JSON. */
  value: unknown;
  /** When the server stored it. */
  at: Date;
}

export interface ProjectOptions {
  /** The locks bucket's TTL (0 = claims never expire): gives notification_locks.expires_at. */
  lockTtlMs?: number;
  /** A value that cannot be projected: recorded in the history only, never a stall. */
  onInvalid?: (change: KvChange, why: string) => void;
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000, and jsonb rejects lone surrogates: a
 * publisher's id with either would fail the whole batch and stall the projector. Both
 * become U+FFFD here (the KV record keeps the exact value).
 */
export function sqlSafe<T>(v: T): T {
  if (typeof v === "string") return v.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD") as T;
  if (Array.isArray(v)) return v.map(sqlSafe) as T;
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[sqlSafe(k)] = sqlSafe(x);
    return out as T;
  }
  return v;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
/** An attempts count that fits `integer`, else null. */
const int = (v: unknown): number | null => (Number.isInteger(v) && Math.abs(v as number) < 2 ** 31 ? (v as number) : null);

/** An ISO time the database accepts, or null (a malformed time must not fail the batch). */
function time(v: unknown): string | null {
  if (typeof v !== "string") return null;
  const ms = Date.parse(v);
  return Number.isFinite(ms) && ms >= Date.UTC(1, 0, 1) && ms <= Date.UTC(9999, 11, 31) ? new Date(ms).toISOString() : null;
}

function isRecord(v: unknown): v is SendRecord {
  const r = v as Partial<SendRecord> | null;
  return r !== null && typeof r === "object" && typeof r.event === "string" && typeof r.status === "string" && typeof r.channel === "string";
}

/** One data-modifying part of the batch's statement; `param` numbers its placeholders. */
type Part = (param: (value: unknown) => string) => string;

/**
 * Writes one batch of changes from any of the buckets, and the stream positions they
 * reach, as ONE statement (a data-modifying CTE per table, each a multi-row upsert from
 * one jsonb parameter): atomic without BEGIN/COMMIT, so a batch costs one round trip —
 * what PGlite, whose every call crosses into WASM, and a busy box both pay for most.
 * Idempotent: every row is keyed by its KV key and revision, and a current-state row only
 * moves to a higher revision, so a redelivered or replayed batch changes nothing.
 * Runs on the pool or inside a caller's transaction alike.
 */
export async function projectBatch(q: Queryable, changes: KvChange[], offsets: Record<string, number>, opts: ProjectOptions = {}): Promise<void> {
  const byBucket = new Map<string, KvChange[]>();
  for (const c of changes) {
    const list = byBucket.get(c.bucket) ?? [];
    list.push(c);
    byBucket.set(c.bucket, list);
  }
  const parts: Part[] = [];
  const records = byBucket.get(Buckets.records);
  if (records) parts.push(...projectRecords(records, opts));
  const templates = byBucket.get(Buckets.templates);
  if (templates) parts.push(projectTemplates(templates, opts));
  const locks = byBucket.get(Buckets.locks);
  if (locks) parts.push(projectLocks(locks, opts));
  const rows = Object.entries(offsets).map(([stream, seq]) => ({ stream, seq }));
  if (rows.length > 0) {
    parts.push(
      (p) => `INSERT INTO projector_offsets (stream, seq, updated_at)
       SELECT stream, seq, now() FROM jsonb_to_recordset(${p(JSON.stringify(rows))}::jsonb) AS x(stream text, seq bigint)
       ON CONFLICT (stream) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()
       WHERE projector_offsets.seq < EXCLUDED.seq`,
    );
  }
  if (parts.length === 0) return;
  const params: unknown[] = [];
  const param = (v: unknown) => (params.push(v), `$${params.length}`);
  // Different tables per part, so no row is touched twice in the statement.
  const ctes = parts.map((part, i) => `w${i} AS (${part(param)})`);
  await q.query(`WITH ${ctes.join(",\n")}\nSELECT 1`, params);
}

function projectRecords(changes: KvChange[], opts: ProjectOptions): Part[] {
  const history: Record<string, unknown>[] = [];
  // The newest revision per send_id (ON CONFLICT cannot touch one row twice per statement),
  // and the earliest time seen in this batch for created_at.
  const current = new Map<string, Record<string, unknown>>();
  for (const c of changes) {
    const sendId = sqlSafe(c.key);
    const valid = c.operation === "PUT" && isRecord(c.value);
    if (c.operation === "PUT" && !valid) opts.onInvalid?.(c, "not a send record");
    const r = valid ? sqlSafe(c.value as SendRecord) : null;
    const at = (r && time(r.updated_at)) ?? c.at.toISOString();
    history.push({
      send_id: sendId,
      revision: c.revision,
      operation: c.operation,
      status: r?.status ?? null,
      attempts: int(r?.attempts),
      reason: str(r?.reason),
      last_error: str(r?.last_error),
      updated_at: at,
      record: r,
    });
    const prev = current.get(sendId);
    const createdAt = prev && (prev.created_at as string) < at ? (prev.created_at as string) : at;
    if (prev && (prev.revision as number) > c.revision) {
      prev.created_at = createdAt;
      continue;
    }
    if (!r) {
      // A delete (or an unreadable value) hides the row but keeps its revision as a floor.
      current.set(sendId, { ...(prev ?? tombstone(sendId, at)), revision: c.revision, deleted: true, created_at: createdAt });
      continue;
    }
    current.set(sendId, {
      send_id: sendId,
      revision: c.revision,
      event_id: str(r.event_id) ?? "",
      event: r.event,
      order_id: str(r.order_id),
      ticket_id: str(r.ticket_id),
      channel: r.channel,
      language: str(r.language),
      template_id: str(r.template_id),
      openid: str(r.openid),
      status: r.status,
      attempts: int(r.attempts) ?? 0,
      last_error: str(r.last_error),
      reason: str(r.reason),
      occurred_at: time(r.occurred_at),
      sent_at: time(r.sent_at),
      receipt_status: str(r.receipt_status),
      receipt_at: time(r.receipt_at),
      created_at: createdAt,
      updated_at: at,
      deleted: false,
      record: r,
    });
  }
  return [
    (p) => `INSERT INTO notification_event_history (send_id, revision, operation, status, attempts, reason, last_error, updated_at, record)
     SELECT * FROM jsonb_to_recordset(${p(JSON.stringify(history))}::jsonb) AS x(send_id text, revision bigint, operation text, status text, attempts integer,
       reason text, last_error text, updated_at timestamptz, record jsonb)
     ON CONFLICT (send_id, revision) DO NOTHING`,
    (p) => `INSERT INTO notification_events AS e (send_id, revision, event_id, event, order_id, ticket_id, channel, language, template_id, openid,
       status, attempts, last_error, reason, occurred_at, sent_at, receipt_status, receipt_at, created_at, updated_at, deleted, record)
     SELECT * FROM jsonb_to_recordset(${p(JSON.stringify([...current.values()]))}::jsonb) AS x(send_id text, revision bigint, event_id text, event text, order_id text,
       ticket_id text, channel text, language text, template_id text, openid text, status text, attempts integer, last_error text,
       reason text, occurred_at timestamptz, sent_at timestamptz, receipt_status text, receipt_at timestamptz, created_at timestamptz,
       updated_at timestamptz, deleted boolean, record jsonb)
     ON CONFLICT (send_id) DO UPDATE SET
       revision = EXCLUDED.revision, event_id = EXCLUDED.event_id, event = EXCLUDED.event, order_id = EXCLUDED.order_id,
       ticket_id = EXCLUDED.ticket_id, channel = EXCLUDED.channel, language = EXCLUDED.language, template_id = EXCLUDED.template_id,
       openid = EXCLUDED.openid, status = EXCLUDED.status, attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error,
       reason = EXCLUDED.reason, occurred_at = EXCLUDED.occurred_at, sent_at = EXCLUDED.sent_at,
       receipt_status = EXCLUDED.receipt_status, receipt_at = EXCLUDED.receipt_at,
       created_at = LEAST(e.created_at, EXCLUDED.created_at), updated_at = EXCLUDED.updated_at,
       deleted = EXCLUDED.deleted, record = EXCLUDED.record
     WHERE e.revision < EXCLUDED.revision`,
  ];
}

function tombstone(sendId: string, at: string): Record<string, unknown> {
  return {
    send_id: sendId, event_id: "", event: "", order_id: null, ticket_id: null, channel: "", language: null, template_id: null, openid: null,
    status: "deleted", attempts: 0, last_error: null, reason: null, occurred_at: null, sent_at: null, receipt_status: null, receipt_at: null, created_at: at, updated_at: at, record: {},
  };
}

function projectTemplates(changes: KvChange[], opts: ProjectOptions): Part {
  const rows = changes.map((c) => {
    const key = sqlSafe(c.key);
    const parts = /^([^.]+\.[^.]+)\.([^.]+)\.(.+)$/.exec(key);
    const t = c.operation === "PUT" && c.value !== null && typeof c.value === "object" ? sqlSafe(c.value as Template & { updated_by?: unknown }) : null;
    if (c.operation === "PUT" && !t) opts.onInvalid?.(c, "not a template");
    return {
      key,
      revision: c.revision,
      operation: c.operation === "PUT" && !t ? "DEL" : c.operation,
      event: parts?.[1] ?? key,
      channel: parts?.[2] ?? "",
      language: parts?.[3] ?? "",
      template_id: str(t?.template_id),
      enabled: typeof t?.enabled === "boolean" ? t.enabled : null,
      changed_by: str(t?.updated_by),
      changed_at: (t && time(t.updated_at)) ?? c.at.toISOString(),
      template: t,
    };
  });
  return (p) => `INSERT INTO notification_templates (key, revision, operation, event, channel, language, template_id, enabled, changed_by, changed_at, template)
     SELECT * FROM jsonb_to_recordset(${p(JSON.stringify(rows))}::jsonb) AS x(key text, revision bigint, operation text, event text, channel text, language text,
       template_id text, enabled boolean, changed_by text, changed_at timestamptz, template jsonb)
     ON CONFLICT (key, revision) DO NOTHING`;
}

function projectLocks(changes: KvChange[], opts: ProjectOptions): Part {
  const latest = new Map<string, Record<string, unknown>>();
  for (const c of changes) {
    const key = sqlSafe(c.key);
    if (((latest.get(key)?.revision as number | undefined) ?? 0) > c.revision) continue;
    const v = c.operation === "PUT" && c.value !== null && typeof c.value === "object" ? sqlSafe(c.value as Partial<LockValue>) : null;
    if (c.operation === "PUT" && !v) opts.onInvalid?.(c, "not a lock");
    const claimed = (v && time(v.at)) ?? c.at.toISOString();
    const ttl = opts.lockTtlMs ?? 0;
    latest.set(key, {
      lock_key: key,
      revision: c.revision,
      send_id: str(v?.send_id),
      event_id: str(v?.event_id),
      claimed_at: claimed,
      // KV expires by the time the server stored the claim.
      expires_at: ttl > 0 ? new Date(c.at.getTime() + ttl).toISOString() : null,
      deleted: c.operation !== "PUT",
    });
  }
  return (p) => `INSERT INTO notification_locks AS l (lock_key, revision, send_id, event_id, claimed_at, expires_at, deleted)
     SELECT * FROM jsonb_to_recordset(${p(JSON.stringify([...latest.values()]))}::jsonb) AS x(lock_key text, revision bigint, send_id text, event_id text,
       claimed_at timestamptz, expires_at timestamptz, deleted boolean)
     ON CONFLICT (lock_key) DO UPDATE SET revision = EXCLUDED.revision, send_id = EXCLUDED.send_id, event_id = EXCLUDED.event_id,
       claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at, deleted = EXCLUDED.deleted
     WHERE l.revision < EXCLUDED.revision`;
}

/** Empties every projected table (before a rebuild), in the caller's transaction. */
export async function truncateProjection(tx: Queryable): Promise<void> {
  await tx.exec("TRUNCATE notification_events, notification_event_history, notification_templates, notification_locks, projector_offsets");
}
