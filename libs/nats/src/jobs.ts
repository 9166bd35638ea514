import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { HeaderNames, MsgIds, SEND_ID_PATTERN, Subjects, decodeJson, encodeJson, type JobPayload, type SendJob } from "@notify/contracts";

export interface PublishJobOptions {
  /** KV revision of the record as the publisher left it (lets the sender CAS without a read). */
  recordRevision?: number;
  /** Defaults to send_id; a DLQ replay uses a fresh id so the duplicate window lets it through. */
  msgId?: string;
  traceparent?: string | undefined;
  /** The job already encoded (the dispatcher measures it before claiming the key). */
  body?: Uint8Array;
}

/**
 * Bytes kept free under the server's `max_payload` for the headers a job carries on its
 * way: msg id, send id, record revision and traceparent on SENDS, and on a DLQ copy the
 * attempts, reason and last error (up to 1 KiB). A job body above `max_payload` minus
 * this room is refused before its business key is claimed.
 */
export const JOB_HEADER_ROOM = 2048;

/** The largest job body the bus takes, given the connection's `max_payload`. */
export function jobBodyLimit(maxPayload: number): number {
  return maxPayload - JOB_HEADER_ROOM;
}

/** Publishes a job on `notify.send.<channel>` with `Nats-Msg-Id` (SENDS de-duplicates it). */
export function publishJob(js: Pick<JetStreamClient, "publish">, job: SendJob<JobPayload>, opts: PublishJobOptions = {}): Promise<PubAck> {
  const h = headers();
  if (opts.recordRevision !== undefined) h.set(HeaderNames.recordRevision, String(opts.recordRevision));
  if (opts.traceparent) h.set(HeaderNames.traceparent, opts.traceparent);
  h.set(HeaderNames.sendId, job.send_id);
  return js.publish(Subjects.send(job.channel), opts.body ?? encodeJson(job), { msgID: opts.msgId ?? job.send_id, headers: h });
}

/** Why and how a job reached the DLQ; carried as headers beside the unchanged job body. */
export interface DlqMeta {
  send_id: string;
  attempts: number;
  last_error: string;
  /** `wechat_permanent`, `max_deliveries`, ... (FailReason in @notify/contracts). */
  reason: string;
  /**
   * SENDS sequence of the job being dead-lettered. When set it joins the message id, so
   * a replayed job that fails again within the duplicate window is still copied (a new
   * job has a new sequence), while a retried copy of the same job is stored once.
   */
  source_seq?: number | undefined;
}

/**
 * Copies a job to `notify.dlq.<channel>`. The message id is derived from the send and
 * its attempts, so a redelivered advisory or a retried copy is stored once.
 */
export function publishToDlq(js: JetStreamClient, job: SendJob<JobPayload>, meta: DlqMeta, traceparent?: string): Promise<PubAck> {
  const h = headers();
  h.set(HeaderNames.sendId, meta.send_id);
  h.set(HeaderNames.attempts, String(meta.attempts));
  // Header values must be one line.
  h.set(HeaderNames.lastError, meta.last_error.replace(/[\r\n]+/g, " ").slice(0, 1024));
  h.set(HeaderNames.reason, meta.reason);
  if (traceparent) h.set(HeaderNames.traceparent, traceparent);
  return js.publish(Subjects.dlq(job.channel), encodeJson(job), { msgID: dlqMsgId(meta), headers: h });
}

/** The Nats-Msg-Id of a DLQ copy (MsgIds.dlq). */
export function dlqMsgId(meta: DlqMeta): string {
  return MsgIds.dlq(meta.send_id, meta.attempts, meta.reason, meta.source_seq);
}

export function decodeJob(data: Uint8Array): SendJob {
  return decodeJson<SendJob>(data);
}

/** A job decoded and checked field by field, or why the bytes are not one. */
export type ParsedJob = { ok: true; job: SendJob<JobPayload> } | { ok: false; error: string };

const JOB_STRINGS = ["send_id", "event_id", "event", "channel", "order_id", "openid", "language", "template_id", "occurred_at"] as const;

/** Decodes a job without trusting the bytes: for messages anyone may have published. */
export function parseJob(data: Uint8Array): ParsedJob {
  let v: unknown;
  try {
    v = decodeJson(data);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  if (!isObject(v)) return { ok: false, error: "not a JSON object" };
  for (const k of JOB_STRINGS) if (typeof v[k] !== "string") return { ok: false, error: `${k} is not a string` };
  if (!SEND_ID_PATTERN.test(v.send_id as string)) return { ok: false, error: "send_id is not a send id" };
  if (v.ticket_id !== null && typeof v.ticket_id !== "string") return { ok: false, error: "ticket_id is neither a string nor null" };
  if (v.fallback_of !== undefined && typeof v.fallback_of !== "string") return { ok: false, error: "fallback_of is not a string" };
  const error = isObject(v.payload) ? ("phone" in v.payload ? smsPayloadError(v.payload) : wechatPayloadError(v.payload)) : "payload is not an object";
  if (error) return { ok: false, error };
  return { ok: true, job: v as unknown as SendJob<JobPayload> };
}

function wechatPayloadError(p: Record<string, unknown>): string | null {
  if (typeof p.touser !== "string" || typeof p.template_id !== "string") return "payload.touser or payload.template_id is not a string";
  for (const k of ["url", "client_msg_id"]) if (p[k] !== undefined && typeof p[k] !== "string") return `payload.${k} is not a string`;
  const mp = p.miniprogram;
  if (mp !== undefined && !(isObject(mp) && typeof mp.appid === "string" && (mp.pagepath === undefined || typeof mp.pagepath === "string"))) return "payload.miniprogram is malformed";
  if (!isObject(p.data)) return "payload.data is not an object";
  for (const [k, f] of Object.entries(p.data)) {
    if (!isObject(f) || typeof f.value !== "string" || (f.color !== undefined && typeof f.color !== "string")) return `payload.data.${k} is not { value, color? }`;
  }
  return null;
}

function smsPayloadError(p: Record<string, unknown>): string | null {
  if (typeof p.phone !== "string" || typeof p.template_id !== "string") return "payload.phone or payload.template_id is not a string";
  if (!Array.isArray(p.params) || !p.params.every((x) => typeof x === "string")) return "payload.params is not a list of strings";
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
