import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { Status, Subjects, encodeJson, msgidKey, type DeliveryFact, type SendRecord } from "@notify/contracts";
import { isWrongLastSequence, type RecordStore } from "@notify/nats";

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

export type ReceiptOutcome = "delivered" | "blocked" | "undelivered" | "duplicate" | "unknown_msgid" | "unknown_status" | "stale";

/** De-duplication of pushes: WeChat retries the same (FromUserName, CreateTime) up to 3 times. */
const receiptKey = (r: Receipt) => `r.${createHash("sha256").update(`${r.from}\u0000${r.createTime}\u0000${r.msgId}`).digest("hex")}`;

/** WeChat's Status text → the record's status. */
export function receiptStatus(status: string): Status | null {
  const s = status.trim().toLowerCase();
  if (s === "success") return Status.delivered;
  if (!s.startsWith("failed")) return null;
  return s.includes("block") ? Status.blocked : Status.undelivered;
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

/**
 * Applies one delivery receipt: msgid → send_id (KV), record `success` → delivered /
 * blocked / undelivered (compare-and-set, so a repeated push moves it once), the fact on
 * `notification.delivered` / `.undelivered` (msg id per send: a re-publish is stored
 * once), then the push is remembered so WeChat's retries count as duplicates.
 * Throws only when the push should be retried by WeChat (infrastructure, or a record not
 * yet at `success`).
 */
export async function applyReceipt(deps: ReceiptDeps, r: Receipt): Promise<ReceiptOutcome> {
  const dedup = receiptKey(r);
  if (await deps.msgids.get(dedup)) return "duplicate";
  const outcome = await apply(deps, r);
  try {
    await deps.msgids.create(dedup, encodeJson({ outcome, at: new Date().toISOString() }));
  } catch (err) {
    // A concurrent copy of the same push got here first: that one is the counted one.
    if (isWrongLastSequence(err)) return "duplicate";
    throw err;
  }
  return outcome;
}

async function apply(deps: ReceiptDeps, r: Receipt): Promise<ReceiptOutcome> {
  const to = receiptStatus(r.status);
  if (!to) {
    deps.log.warn({ wechat_msgid: r.msgId, receipt_status: r.status.slice(0, 64) }, "delivery receipt with a status WeChat does not document: ignored");
    return "unknown_status";
  }
  const entry = await deps.msgids.get(msgidKey(r.msgId));
  const sendId = entry?.operation === "PUT" ? entry.string() : null;
  if (!sendId) {
    deps.log.info({ wechat_msgid: r.msgId }, "delivery receipt for an unknown msgid (not ours, or older than the bucket's TTL)");
    return "unknown_msgid";
  }
  const receiptAt = new Date(Number(r.createTime) * 1000);
  const at = Number.isFinite(receiptAt.getTime()) ? receiptAt.toISOString() : new Date().toISOString();
  const deadline = Date.now() + (deps.waitForSuccessMs ?? 2500);
  for (;;) {
    const cur = await deps.records.get(sendId);
    const status = cur?.record.status;
    if (status === to) {
      // Applied before, but the push was not remembered (a crash in between): the fact again.
      await publishFact(deps, cur!.record, r, at);
      return "duplicate";
    }
    if (cur && status === Status.success) {
      const w = await deps.records.write(sendId, (c) => (c ? { ...c, status: to, receipt_status: r.status, receipt_at: at, updated_at: new Date().toISOString() } : null), { expected: cur });
      if (w.written) {
        await publishFact(deps, w.record, r, at);
        return to as ReceiptOutcome;
      }
      continue; // someone moved it meanwhile: look again
    }
    if (cur && (status === Status.queued || status === Status.retrying) && Date.now() < deadline) {
      // WeChat was faster than the sender's own record write.
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    if (cur && (status === Status.queued || status === Status.retrying)) throw new ReceiptNotReadyError(`record ${sendId} is still ${status}`);
    deps.log.info({ send_id: sendId, status, wechat_msgid: r.msgId }, "delivery receipt for a record that is not at success: ignored");
    return "stale";
  }
}

async function publishFact(deps: ReceiptDeps, rec: SendRecord, r: Receipt, at: string): Promise<void> {
  const status = rec.status as DeliveryFact["status"];
  const fact: DeliveryFact = {
    send_id: rec.send_id,
    event_id: rec.event_id,
    event: rec.event,
    channel: rec.channel,
    order_id: rec.order_id,
    ticket_id: rec.ticket_id,
    status,
    wechat_msgid: r.msgId,
    receipt_status: r.status,
    receipt_at: at,
  };
  const subject = status === Status.delivered ? Subjects.delivered : Subjects.undelivered;
  await deps.js.publish(subject, encodeJson(fact), { msgID: `receipt.${rec.send_id}` });
}
