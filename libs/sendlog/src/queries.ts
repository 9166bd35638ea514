import { iso, num, type Queryable } from "./db.js";
import { sqlSafe } from "./project.js";

/** The operator's filters on the send log; every one optional, all combined with AND. */
export interface SendFilter {
  status?: string | undefined;
  event?: string | undefined;
  channel?: string | undefined;
  openid?: string | undefined;
  order_id?: string | undefined;
  ticket_id?: string | undefined;
  /** Inclusive lower / exclusive upper bounds (ISO 8601). */
  created_from?: string | undefined;
  created_to?: string | undefined;
  updated_from?: string | undefined;
  updated_to?: string | undefined;
}

export const SEND_FILTERS = ["status", "event", "channel", "openid", "order_id", "ticket_id", "created_from", "created_to", "updated_from", "updated_to"] as const;

export interface SendRow {
  send_id: string;
  revision: number;
  event_id: string;
  event: string;
  order_id: string | null;
  ticket_id: string | null;
  channel: string;
  language: string | null;
  template_id: string | null;
  openid: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  reason: string | null;
  occurred_at: string | null;
  sent_at: string | null;
  /** What the provider's delivery receipt said (e.g. `success`, `failed:user block`), and when. */
  receipt_status: string | null;
  receipt_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface HistoryRow {
  revision: number;
  operation: string;
  status: string | null;
  attempts: number | null;
  reason: string | null;
  last_error: string | null;
  updated_at: string | null;
}

export class CursorError extends Error {
  override name = "CursorError";
}

const COLUMNS =
  "send_id, revision, event_id, event, order_id, ticket_id, channel, language, template_id, openid, status, attempts, last_error, reason, occurred_at, sent_at, receipt_status, receipt_at, created_at, updated_at";

function toRow(r: Record<string, unknown>): SendRow {
  return {
    send_id: r.send_id as string,
    revision: num(r.revision),
    event_id: r.event_id as string,
    event: r.event as string,
    order_id: (r.order_id as string | null) ?? null,
    ticket_id: (r.ticket_id as string | null) ?? null,
    channel: r.channel as string,
    language: (r.language as string | null) ?? null,
    template_id: (r.template_id as string | null) ?? null,
    openid: (r.openid as string | null) ?? null,
    status: r.status as string,
    attempts: num(r.attempts),
    last_error: (r.last_error as string | null) ?? null,
    reason: (r.reason as string | null) ?? null,
    occurred_at: iso(r.occurred_at),
    sent_at: iso(r.sent_at),
    receipt_status: (r.receipt_status as string | null) ?? null,
    receipt_at: iso(r.receipt_at),
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
  };
}

/** Keyset position: the last row's (created_at, send_id), opaque to clients. */
export function encodeCursor(row: Pick<SendRow, "created_at" | "send_id">): string {
  return Buffer.from(JSON.stringify([row.created_at, row.send_id]), "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && Number.isFinite(Date.parse(v[0])) && typeof v[1] === "string") return [v[0], v[1]];
  } catch {
    /* below */
  }
  throw new CursorError("cursor is not one this API returned (pass next_cursor unchanged)");
}

function where(filter: SendFilter, params: unknown[]): string[] {
  const conds = ["NOT deleted"];
  const eq = (col: keyof SendFilter & keyof SendRow) => {
    const v = filter[col];
    if (v !== undefined) {
      // Stored values had NUL and lone surrogates replaced: compare like with like.
      params.push(sqlSafe(v));
      conds.push(`${col} = $${params.length}`);
    }
  };
  for (const col of ["status", "event", "channel", "openid", "order_id", "ticket_id"] as const) eq(col);
  const range = (col: "created_at" | "updated_at", from: string | undefined, to: string | undefined) => {
    if (from !== undefined) {
      params.push(from);
      conds.push(`${col} >= $${params.length}::timestamptz`);
    }
    if (to !== undefined) {
      params.push(to);
      conds.push(`${col} < $${params.length}::timestamptz`);
    }
  };
  range("created_at", filter.created_from, filter.created_to);
  range("updated_at", filter.updated_from, filter.updated_to);
  return conds;
}

/** Newest first by (created_at, send_id); `cursor` continues after the last page's last row. */
export async function listSends(db: Queryable, filter: SendFilter, page: { limit: number; cursor?: string | undefined }): Promise<{ items: SendRow[]; next_cursor: string | null }> {
  const params: unknown[] = [];
  const conds = where(filter, params);
  if (page.cursor !== undefined) {
    const [createdAt, sendId] = decodeCursor(page.cursor);
    params.push(createdAt, sqlSafe(sendId));
    conds.push(`(created_at, send_id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(page.limit + 1);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT ${COLUMNS} FROM notification_events WHERE ${conds.join(" AND ")} ORDER BY created_at DESC, send_id DESC LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, page.limit).map(toRow);
  return { items, next_cursor: rows.length > page.limit ? encodeCursor(items[items.length - 1]!) : null };
}

/** Every send of one order, newest first, each with its status history (newest first). */
export async function orderSends(db: Queryable, orderId: string, limit: number): Promise<{ items: (SendRow & { history: HistoryRow[] })[]; truncated: boolean }> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT ${COLUMNS} FROM notification_events WHERE order_id = $1 AND NOT deleted ORDER BY created_at DESC, send_id DESC LIMIT $2`,
    [sqlSafe(orderId), limit + 1],
  );
  const sends = rows.slice(0, limit).map(toRow);
  const history = new Map<string, HistoryRow[]>();
  if (sends.length > 0) {
    const hs = await db.query<Record<string, unknown>>(
      `SELECT send_id, revision, operation, status, attempts, reason, last_error, updated_at FROM notification_event_history
        WHERE send_id = ANY(SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY send_id, revision DESC`,
      [JSON.stringify(sends.map((s) => s.send_id))],
    );
    for (const h of hs) {
      const list = history.get(h.send_id as string) ?? [];
      list.push({
        revision: num(h.revision),
        operation: h.operation as string,
        status: (h.status as string | null) ?? null,
        attempts: h.attempts == null ? null : num(h.attempts),
        reason: (h.reason as string | null) ?? null,
        last_error: (h.last_error as string | null) ?? null,
        updated_at: iso(h.updated_at),
      });
      history.set(h.send_id as string, list);
    }
  }
  return { items: sends.map((s) => ({ ...s, history: history.get(s.send_id) ?? [] })), truncated: rows.length > limit };
}

export interface StatsQuery {
  from: string;
  to: string;
  interval: "hour" | "day";
  /** Which time places a send in a bucket (default created_at). */
  by?: "created" | "updated";
}

export interface StatsRow {
  start: string;
  status: string;
  event: string;
  channel: string;
  count: number;
}

/** Counts by status × event × channel per hour or day (UTC) in [from, to). */
export async function sendStats(db: Queryable, q: StatsQuery): Promise<StatsRow[]> {
  const col = q.by === "updated" ? "updated_at" : "created_at";
  const rows = await db.query<Record<string, unknown>>(
    `SELECT to_char(date_trunc($1, ${col} AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS".000Z"') AS start, status, event, channel, count(*) AS count
       FROM notification_events
      WHERE NOT deleted AND ${col} >= $2::timestamptz AND ${col} < $3::timestamptz
      GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    [q.interval, q.from, q.to],
  );
  return rows.map((r) => ({
    start: r.start as string,
    status: r.status as string,
    event: r.event as string,
    channel: r.channel as string,
    count: num(r.count),
  }));
}
