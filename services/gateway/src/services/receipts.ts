import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { MsgIds, Status, Subjects, decodeJson, encodeJson, fallbackJobKey, msgidKey, smsSidKey, type DeliveryFact, type SendRecord, type SmsSendJob } from "@notify/contracts";
import { isWrongLastSequence, publishFallback, type RecordStore } from "@notify/nats";

/** The few logger calls the handler makes (pino and Fastify's logger both fit). */
interface ReceiptLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One TEMPLATESENDJOBFINISH push, as parsed from WeChat's XML. */
export interface Receipt {
  /** The user's openid (FromUserName). */
  from: string;
  /** WeChat's CreateTime, seconds since the epoch (as text). */
  createTime: string;
  msgId: string;
  /** `success`, `failed:user block`, `failed: system failed`. */
  status: string;
}

/** One element of Tencent Cloud SMS's status-report callback (a JSON array of these). */
export interface SmsReport {
  sid: string;
  report_status: "SUCCESS" | "FAIL";
  errmsg?: string | undefined;
  /** Beijing time, `2026-11-24 08:03:04`. */
  user_receive_time?: string | undefined;
}

export type ReceiptOutcome = "delivered" | "blocked" | "undelivered" | "duplicate" | "unknown_msgid" | "unknown_sid" | "unknown_status" | "stale";

/**
 * A provider's delivery report in the one shape both channels share, so WeChat receipts
 * and SMS status reports take the same path: look-up, compare-and-set, fact, fallback.
 */
export interface Delivery {
  channel: "wechat" | "sms";
  /** Where the sender left the send_id in `wechat_msgids`. */
  sendKey: string;
  /** De-duplication key of this push in `wechat_msgids`. */
  dedupKey: string;
  /** The record's new status; null when the provider's status is not one we know. */
  to: Status | null;
  /** The provider's status text, kept on the record and the fact. */
  receiptStatus: string;
  /** When the provider says it was delivered (ISO). */
  receiptAt: string;
  /** The provider's id, for logs and the fact. */
  ref: { wechat_msgid: string } | { sms_serial_no: string };
}

/** WeChat's Status text → the record's status. */
export function receiptStatus(status: string): Status | null {
  const s = status.trim().toLowerCase();
  if (s === "success") return Status.delivered;
  if (!s.startsWith("failed")) return null;
  return s.includes("block") ? Status.blocked : Status.undelivered;
}

const hash = (parts: string[]) => createHash("sha256").update(parts.join("\u0000")).digest("hex");

/** A WeChat receipt; its retries repeat (FromUserName, CreateTime), so those de-duplicate it. */
export function wechatDelivery(r: Receipt): Delivery {
  const at = new Date(Number(r.createTime) * 1000);
  return {
    channel: "wechat",
    sendKey: msgidKey(r.msgId),
    dedupKey: `r.${hash([r.from, r.createTime, r.msgId])}`,
    to: receiptStatus(r.status),
    receiptStatus: r.status,
    receiptAt: Number.isFinite(at.getTime()) ? at.toISOString() : new Date().toISOString(),
    ref: { wechat_msgid: r.msgId },
  };
}

/** Tencent's `user_receive_time` is Beijing time without a zone. */
function beijingTime(s: string | undefined): string {
  const m = s ? /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)$/.exec(s.trim()) : null;
  const d = m ? new Date(`${m[1]}T${m[2]}+08:00`) : null;
  return d && Number.isFinite(d.getTime()) ? d.toISOString() : new Date().toISOString();
}

/** An SMS status report; a sid has one final report, so (sid, status) de-duplicates it. */
export function smsDelivery(r: SmsReport): Delivery {
  const errmsg = (r.errmsg ?? "").slice(0, 64);
  return {
    channel: "sms",
    sendKey: smsSidKey(r.sid),
    dedupKey: `r.${hash(["sms", r.sid, r.report_status])}`,
    to: r.report_status === "SUCCESS" ? Status.delivered : Status.undelivered,
    receiptStatus: errmsg ? `${r.report_status}:${errmsg}` : r.report_status,
    receiptAt: beijingTime(r.user_receive_time),
    ref: { sms_serial_no: r.sid },
  };
}

export interface ReceiptDeps {
  msgids: KV;
  records: RecordStore;
  js: JetStreamClient;
  log: ReceiptLog;
  /** A receipt can overtake the sender's own `success` write: wait this long for it (default 2500 ms). */
  waitForSuccessMs?: number;
}

export class ReceiptNotReadyError extends Error {
  override name = "ReceiptNotReadyError";
}

/** Applies one WeChat delivery receipt (see applyDelivery). */
export function applyReceipt(deps: ReceiptDeps, r: Receipt): Promise<ReceiptOutcome> {
  return applyDelivery(deps, wechatDelivery(r));
}

/**
 * Applies one delivery report: provider id → send_id (KV), record `success` → delivered /
 * blocked / undelivered (compare-and-set, so a repeated push moves it once), the fact on
 * `notification.delivered` / `.undelivered` (msg id per send: a re-publish is stored
 * once), the SMS fallback of a blocked WeChat send (once per business key), then the push
 * is remembered so the provider's retries count as duplicates.
 * Throws only when the push should be retried by the provider (infrastructure, or a
 * record not yet at `success`).
 */
export async function applyDelivery(deps: ReceiptDeps, d: Delivery): Promise<ReceiptOutcome> {
  if (await deps.msgids.get(d.dedupKey)) return "duplicate";
  const outcome = await apply(deps, d);
  try {
    await deps.msgids.create(d.dedupKey, encodeJson({ outcome, at: new Date().toISOString() }));
  } catch (err) {
    // A concurrent copy of the same push got here first: that one is the counted one.
    if (isWrongLastSequence(err)) return "duplicate";
    throw err;
  }
  return outcome;
}

async function apply(deps: ReceiptDeps, d: Delivery): Promise<ReceiptOutcome> {
  const to = d.to;
  if (!to) {
    deps.log.warn({ ...d.ref, receipt_status: d.receiptStatus.slice(0, 64) }, "delivery receipt with a status the provider does not document: ignored");
    return "unknown_status";
  }
  const entry = await deps.msgids.get(d.sendKey);
  const sendId = entry?.operation === "PUT" ? entry.string() : null;
  if (!sendId) {
    deps.log.info({ channel: d.channel, ...d.ref }, "delivery receipt for an unknown provider id (not ours, or older than the bucket's TTL)");
    return d.channel === "sms" ? "unknown_sid" : "unknown_msgid";
  }
  // A blocked WeChat send with a prepared SMS: linked on the record in the same write.
  const fallback = to === Status.blocked ? await fallbackJob(deps, sendId) : null;
  const deadline = Date.now() + (deps.waitForSuccessMs ?? 2500);
  for (;;) {
    const cur = await deps.records.get(sendId);
    const status = cur?.record.status;
    if (status === to) {
      // Applied before, but the push was not remembered (a crash in between): fallback and fact again (both once-only).
      await finish(deps, cur!.record, d, fallback);
      return "duplicate";
    }
    if (cur && status === Status.success) {
      const changes = { status: to, receipt_status: d.receiptStatus, receipt_at: d.receiptAt, updated_at: new Date().toISOString(), ...(fallback ? { fallback_send_id: fallback.send_id } : {}) };
      const w = await deps.records.write(sendId, (c) => (c ? { ...c, ...changes } : null), { expected: cur });
      if (w.written) {
        await finish(deps, w.record, d, fallback);
        return to as ReceiptOutcome;
      }
      continue; // someone moved it meanwhile: look again
    }
    if (cur && (status === Status.queued || status === Status.retrying) && Date.now() < deadline) {
      // The provider was faster than the sender's own record write.
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    if (cur && (status === Status.queued || status === Status.retrying)) throw new ReceiptNotReadyError(`record ${sendId} is still ${status}`);
    deps.log.info({ send_id: sendId, status, ...d.ref }, "delivery receipt for a record that is not at success: ignored");
    return "stale";
  }
}

async function fallbackJob(deps: ReceiptDeps, sendId: string): Promise<SmsSendJob | null> {
  const e = await deps.msgids.get(fallbackJobKey(sendId));
  return e?.operation === "PUT" && e.length > 0 ? decodeJson<SmsSendJob>(e.value) : null;
}

async function finish(deps: ReceiptDeps, rec: SendRecord, d: Delivery, fallback: SmsSendJob | null): Promise<void> {
  if (fallback) {
    const r = await publishFallback(deps.js, deps.records, fallback);
    deps.log.info({ send_id: rec.send_id, fallback_send_id: fallback.send_id, fallback: r }, "the traveller blocked WeChat messages: SMS fallback");
  }
  const status = rec.status as DeliveryFact["status"];
  const fact: DeliveryFact = {
    send_id: rec.send_id,
    event_id: rec.event_id,
    event: rec.event,
    channel: rec.channel,
    order_id: rec.order_id,
    ticket_id: rec.ticket_id,
    status,
    ...d.ref,
    receipt_status: d.receiptStatus,
    receipt_at: d.receiptAt,
  };
  const subject = status === Status.delivered ? Subjects.delivered : Subjects.undelivered;
  await deps.js.publish(subject, encodeJson(fact), { msgID: MsgIds.delivery(rec.send_id) });
}
