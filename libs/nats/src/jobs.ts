import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { Headers, Subjects, decodeJson, encodeJson, type SendJob } from "@notify/contracts";

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
export function publishJob(js: Pick<JetStreamClient, "publish">, job: SendJob, opts: PublishJobOptions = {}): Promise<PubAck> {
  const h = headers();
  if (opts.recordRevision !== undefined) h.set(Headers.recordRevision, String(opts.recordRevision));
  if (opts.traceparent) h.set(Headers.traceparent, opts.traceparent);
  h.set(Headers.sendId, job.send_id);
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
export function publishToDlq(js: JetStreamClient, job: SendJob, meta: DlqMeta, traceparent?: string): Promise<PubAck> {
  const h = headers();
  h.set(Headers.sendId, meta.send_id);
  h.set(Headers.attempts, String(meta.attempts));
  // Header values must be one line.
  h.set(Headers.lastError, meta.last_error.replace(/[\r\n]+/g, " ").slice(0, 1024));
  h.set(Headers.reason, meta.reason);
  if (traceparent) h.set(Headers.traceparent, traceparent);
  return js.publish(Subjects.dlq(job.channel), encodeJson(job), { msgID: dlqMsgId(meta), headers: h });
}

/** The Nats-Msg-Id of a DLQ copy: `dlq.<send_id>.<attempts>.<reason>[.<source_seq>]`. */
export function dlqMsgId(meta: DlqMeta): string {
  const base = `dlq.${meta.send_id}.${meta.attempts}.${meta.reason}`;
  return meta.source_seq !== undefined ? `${base}.${meta.source_seq}` : base;
}

/** Reads the DLQ meta back from a message's headers. */
export function readDlqMeta(h: MsgHdrs | undefined): DlqMeta {
  return {
    send_id: h?.get(Headers.sendId) ?? "",
    attempts: Number(h?.get(Headers.attempts) ?? 0),
    last_error: h?.get(Headers.lastError) ?? "",
    reason: h?.get(Headers.reason) ?? "",
  };
}

export function decodeJob(data: Uint8Array): SendJob {
  return decodeJson<SendJob>(data);
}
