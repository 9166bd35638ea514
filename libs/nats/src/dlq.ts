import { JetStreamApiError, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { HeaderNames, MsgIds, Status, Streams, Subjects, encodeJson, recordFromJob, type JobPayload, type SendJob, type SendRecord } from "@notify/contracts";
import { parseJob, publishToDlq, type DlqMeta } from "./jobs.js";
import type { RecordStore, StoredRecord } from "./records.js";

/**
 * Reading and deleting DLQ entries: the one implementation the gateway's DLQ API and the
 * DLQ monitor share. Anything can be published on `notify.dlq.<channel>` (a stray
 * publisher, a bug, an attacker with publish rights), so reads never assume a job: an
 * entry that is not one is returned as unreadable, with its size and headers, and can
 * still be discarded.
 */

/** Every DLQ entry, readable or not. */
interface EntryBase {
  /** Stream sequence in DLQ: the id for inspect, replay and discard. */
  seq: number;
  subject: string;
  /** The subject's last token (`notify.dlq.<channel>`). */
  channel: string;
  received_at: string;
}

/** A job, with why it died (from the headers the sender or the DLQ monitor set). */
export interface ReadableDlqEntry extends EntryBase {
  readable: true;
  send_id: string;
  attempts: number;
  reason: string;
  last_error: string;
  event: string;
  event_id: string;
  order_id: string;
  ticket_id: string | null;
  job: SendJob<JobPayload>;
  /** The dead job's trace context (a replay continues the trace). */
  traceparent?: string | undefined;
}

/** Not a job: what an operator needs to decide to discard it. */
export interface UnreadableDlqEntry extends EntryBase {
  readable: false;
  /** Body size in bytes. */
  size: number;
  /** The first headers, values cut at `HEADER_VALUE_MAX` characters. */
  headers: { name: string; value: string }[];
  /** Why it is not a job. */
  error: string;
}

export type DlqEntry = ReadableDlqEntry | UnreadableDlqEntry;

export interface DlqPage {
  items: DlqEntry[];
  count: number;
  /** Messages in the DLQ stream (all channels). */
  total: number;
  first_seq: number;
  last_seq: number;
  next_seq?: number;
}

const DLQ_PREFIX = Subjects.dlq("");
const HEADERS_MAX = 32;
const HEADER_VALUE_MAX = 512;

/** Reads the DLQ meta back from a message's headers; a malformed attempts count reads as 0. */
export function readDlqMeta(h: MsgHdrs | undefined): DlqMeta {
  const attempts = h?.get(HeaderNames.attempts) ?? "";
  return {
    send_id: h?.get(HeaderNames.sendId) ?? "",
    attempts: /^\d{1,15}$/.test(attempts) ? Number(attempts) : 0,
    last_error: h?.get(HeaderNames.lastError) ?? "",
    reason: h?.get(HeaderNames.reason) ?? "",
  };
}

/** One stored DLQ message as an entry; never throws. */
export function toDlqEntry(m: StoredMsg): DlqEntry {
  const base: EntryBase = {
    seq: m.seq,
    subject: m.subject,
    channel: m.subject.startsWith(DLQ_PREFIX) ? m.subject.slice(DLQ_PREFIX.length) : m.subject,
    received_at: receivedAt(m),
  };
  let h: MsgHdrs;
  try {
    h = m.header;
  } catch (err) {
    return { ...base, readable: false, size: m.data.length, headers: [], error: `headers not readable: ${(err as Error).message}` };
  }
  const parsed = parseJob(m.data);
  if (!parsed.ok) return { ...base, readable: false, size: m.data.length, headers: headerList(h), error: parsed.error };
  const job = parsed.job;
  const meta = readDlqMeta(h);
  return {
    ...base,
    readable: true,
    // The job's own id: the header is only a copy, and the job is what a replay sends.
    send_id: job.send_id,
    attempts: meta.attempts,
    reason: meta.reason,
    last_error: meta.last_error,
    event: job.event,
    event_id: job.event_id,
    order_id: job.order_id,
    ticket_id: job.ticket_id,
    job,
    traceparent: h.get(HeaderNames.traceparent) || undefined,
  };
}

/** The entry at `seq`, or null when there is none (never was, or deleted). */
export async function getDlqEntry(jsm: JetStreamManager, seq: number): Promise<DlqEntry | null> {
  const m = await jsm.streams.getMessage(Streams.dlq, { seq });
  return m ? toDlqEntry(m) : null;
}

/** Entries from `fromSeq` on, oldest first, `limit` at most; `next_seq` when more follow. */
export async function listDlq(jsm: JetStreamManager, opts: { channel?: string | undefined; fromSeq?: number | undefined; limit: number }): Promise<DlqPage> {
  const { state } = await jsm.streams.info(Streams.dlq);
  const subject = opts.channel ? Subjects.dlq(opts.channel) : Subjects.dlqAll;
  const items: DlqEntry[] = [];
  let seq = Math.max(opts.fromSeq ?? 1, state.first_seq, 1);
  let nextSeq: number | undefined;
  while (state.messages > 0 && seq <= state.last_seq) {
    // next_by_subj (nats-server ≥ 2.9) skips deleted sequences and other channels in one
    // request; the client's type for the non-direct get does not list it yet.
    const m = await jsm.streams.getMessage(Streams.dlq, { seq, next_by_subj: subject } as unknown as { seq: number });
    if (!m) break;
    if (items.length === opts.limit) {
      nextSeq = m.seq;
      break;
    }
    items.push(toDlqEntry(m));
    seq = m.seq + 1;
  }
  const page: DlqPage = { items, count: items.length, total: state.messages, first_seq: state.first_seq, last_seq: state.last_seq };
  if (nextSeq !== undefined) page.next_seq = nextSeq;
  return page;
}

/** Removes a DLQ entry; false when it was already gone (a concurrent discard or replay). */
export function deleteDlqEntry(jsm: JetStreamManager, seq: number): Promise<boolean> {
  return deleteIfPresent(jsm, Streams.dlq, seq);
}

/**
 * Deletes one stream message; true when this call removed it, false when it was already
 * gone. Servers answer a delete of a missing sequence with different codes (10037 no
 * message found, 10043 sequence not found, 2.9's 10057 message delete failed), so any
 * refusal is confirmed by reading the sequence back rather than by matching a code.
 */
export async function deleteIfPresent(jsm: JetStreamManager, stream: string, seq: number): Promise<boolean> {
  try {
    if (await jsm.streams.deleteMessage(stream, seq, false)) return true;
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    if ((await jsm.streams.getMessage(stream, { seq })) !== null) throw err;
    return false;
  }
  if ((await jsm.streams.getMessage(stream, { seq })) !== null) throw new Error(`${stream}: sequence ${seq} was not deleted`);
  return false;
}

/** What `deadLetter` did. */
export type DeadLetterResult =
  /** This call moved the record to `dead` (count it once). */
  | { outcome: "dead"; record: SendRecord }
  /** The record was `dead` already (a retried dead-lettering): the fact was published again, nothing to count. */
  | { outcome: "already_dead"; record: SendRecord }
  /** The record reached another final status first (success, failed): the copy was withdrawn. */
  | { outcome: "final"; status: string | undefined };

export interface DeadLetterJob {
  job: SendJob;
  /** SENDS sequence of the job: joins the DLQ copy's and the `notification.dead` fact's message ids. */
  sourceSeq: number;
  attempts: number;
  lastError: string;
  reason: string;
  traceparent?: string | undefined;
  /** The record as the caller last read it (compare-and-set from there). */
  current?: StoredRecord | null | undefined;
}

/**
 * Dead-letters one job: the one sequence the sender (its last provider attempt failed)
 * and the DLQ monitor (a MAX_DELIVERIES advisory, the server's backstop) share, so both
 * leave the same DLQ copy, record and fact:
 *
 *   1. copy the job to `notify.dlq.<channel>` (skipped when the record is already `dead`:
 *      the copy always precedes that write), message id `dlq.<send_id>.<attempts>.<reason>.<seq>`;
 *   2. record `dead` (compare-and-set; refused when the record is final already, and then
 *      the copy just made is withdrawn);
 *   3. publish `notification.dead`, message id `dead.<send_id>.<seq>`.
 *
 * A crash at any point is repaired by running it again: every step is idempotent. The
 * caller then removes the job from SENDS (term, or a delete).
 */
export async function deadLetter(deps: { js: JetStreamClient; jsm: JetStreamManager; records: RecordStore }, d: DeadLetterJob): Promise<DeadLetterResult> {
  const { js, jsm, records } = deps;
  const { job, sourceSeq: seq, attempts, lastError, reason } = d;
  const current = d.current === undefined ? await records.get(job.send_id) : d.current;
  const status = current?.record.status;
  if (status !== undefined && status !== Status.dead && status !== Status.queued && status !== Status.retrying) return { outcome: "final", status };

  let dead: SendRecord;
  let transitioned = false;
  if (status === Status.dead) {
    dead = current!.record;
  } else {
    const copy = await publishToDlq(js, job, { send_id: job.send_id, attempts, last_error: lastError, reason, source_seq: seq }, d.traceparent);
    const now = new Date().toISOString();
    const w = await records.write(
      job.send_id,
      (c) =>
        c && c.status !== Status.queued && c.status !== Status.retrying
          ? null
          : Object.assign({}, c ?? recordFromJob(job, Status.queued, now), { status: Status.dead, attempts, reason, last_error: lastError, next_attempt_at: undefined, updated_at: now }),
      current ? { expected: current } : {},
    );
    if (w.written) {
      dead = w.record;
      transitioned = true;
    } else if (w.current?.record.status === Status.dead) {
      dead = w.current.record;
    } else {
      // A success (or a permanent failure) landed between the read and the write: the
      // copy just made is wrong.
      await deleteDlqEntry(jsm, copy.seq);
      return { outcome: "final", status: w.current?.record.status };
    }
  }
  const h = headers();
  if (d.traceparent) h.set(HeaderNames.traceparent, d.traceparent);
  await js.publish(Subjects.dead, encodeJson({ ...dead, stream_seq: seq }), { msgID: MsgIds.dead(job.send_id, seq), headers: h });
  return { outcome: transitioned ? "dead" : "already_dead", record: dead };
}

function headerList(h: MsgHdrs): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const [name, values] of h) {
    for (const v of values) {
      if (out.length === HEADERS_MAX) return out;
      out.push({ name, value: v.length > HEADER_VALUE_MAX ? `${v.slice(0, HEADER_VALUE_MAX)}…` : v });
    }
  }
  return out;
}

function receivedAt(m: StoredMsg): string {
  const t = m.time;
  return Number.isNaN(t.getTime()) ? new Date(0).toISOString() : t.toISOString();
}
