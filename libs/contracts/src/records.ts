import type { EventType } from "./names.js";
import { maskPhone } from "./phone.js";

/**
 * Statuses of a send record in `notification_events`. The KV history of a key is its
 * status history. `queued` and `retrying` are in flight; the rest are final, except that
 * a delivery receipt (WeChat) or status report (SMS) moves `success` on to `delivered`,
 * `blocked` or `undelivered`.
 */
export const Status = {
  queued: "queued",
  retrying: "retrying",
  success: "success",
  failed: "failed",
  dead: "dead",
  skipped: "skipped",
  rejected: "rejected",
  /** After `success`: WeChat's receipt (TEMPLATESENDJOBFINISH) or Tencent's SMS report said the user got it. */
  delivered: "delivered",
  /** Receipt `failed:user block`: the user blocked the account's messages. */
  blocked: "blocked",
  /** Receipt `failed: system failed`, or an SMS report FAIL: it did not reach the user. */
  undelivered: "undelivered",
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** What a delivery receipt can move a `success` record to. */
export const RECEIPT_STATUSES: ReadonlySet<Status> = new Set([Status.delivered, Status.blocked, Status.undelivered]);

export const FINAL_STATUSES: ReadonlySet<Status> = new Set([
  Status.success,
  Status.failed,
  Status.dead,
  Status.skipped,
  Status.rejected,
  Status.delivered,
  Status.blocked,
  Status.undelivered,
]);

const RANK: Record<Status, number> = {
  queued: 1,
  retrying: 2,
  success: 3,
  failed: 3,
  dead: 3,
  skipped: 3,
  rejected: 3,
  delivered: 4,
  blocked: 4,
  undelivered: 4,
};

/**
 * A record never moves backwards: final statuses are final, `retrying` never returns
 * to `queued`. The one exception is a replay, requested explicitly: an operator's DLQ
 * replay, or a new event for a business key that was never delivered (dead, failed or
 * skipped) moves it back to `queued`. `success` and `rejected` are never replayed.
 */
export function canTransition(from: Status | undefined, to: Status, opts: { replay?: boolean } = {}): boolean {
  if (from === undefined) return true;
  if (opts.replay) return (from === Status.dead || from === Status.failed || from === Status.skipped) && to === Status.queued;
  // `success` means WeChat accepted the call; its delivery receipt is the one step after it.
  if (from === Status.success) return RECEIPT_STATUSES.has(to);
  if (FINAL_STATUSES.has(from)) return false;
  if (from === Status.retrying && to === Status.retrying) return true;
  return RANK[to] >= RANK[from];
}

export const SkipReason = {
  noTemplate: "no_template",
  disabled: "disabled",
  /** An SMS template, and the envelope has no recipient.phone. */
  noPhone: "no_phone",
} as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];

export const FailReason = {
  schema: "schema",
  render: "render",
  /** A rendered value breaks WeChat's keyword rule and the template's policy rejects it. */
  fieldRule: "field_rule",
  permanent: "wechat_permanent",
  /** Tencent SMS refused the message for good (template, signature, number, blacklist). */
  smsPermanent: "sms_permanent",
  maxDeliveries: "max_deliveries",
  /** The rendered job is larger than the bus accepts (the limit is in `last_error`). */
  tooLarge: "too_large",
  /** The job could not be published (a permanent error, or the event's last delivery). */
  dispatch: "dispatch",
  /** The stored template for this event does not compile (the error is in `last_error`). */
  templateInvalid: "template_invalid",
  /**
   * A call's outcome was unknown (no errcode came back) and the provider's client_msg_id
   * de-duplication (WeChat: 10 minutes) has run out since: another call could deliver a
   * second message, so none is made. An operator replays the DLQ entry to send anyway.
   */
  dedupWindow: "dedup_window_passed",
} as const;

/** One send (or a rejected event) as recorded in `notification_events`, keyed by `send_id`. */
export interface SendRecord {
  send_id: string;
  event_id: string;
  event: EventType | string;
  order_id: string | null;
  ticket_id: string | null;
  channel: string;
  language: string | null;
  template_id: string | null;
  openid: string | null;
  status: Status;
  attempts: number;
  reason?: string | undefined;
  last_error?: string | undefined;
  /** ajv errors when `reason === "schema"`. */
  errors?: unknown[] | undefined;
  sent_at?: string | undefined;
  wechat_msgid?: string | undefined;
  /** The delivery receipt: WeChat's Status text (SMS: `report_status` and `errmsg`) and when it was delivered. */
  receipt_status?: string | undefined;
  receipt_at?: string | undefined;
  /** While `retrying`: when the next attempt is due (the nak delay or the end of a quota park). */
  next_attempt_at?: string | undefined;
  /**
   * When the first call whose outcome is unknown began (a timeout, a lost answer): the
   * provider may have delivered it, and only its client_msg_id window makes a retry safe.
   */
  uncertain_since?: string | undefined;
  /** SMS: Tencent's SerialNo (the `sid` of its status reports). */
  sms_serial_no?: string | undefined;
  /** SMS: the number, masked (all but the last 4 digits). */
  phone?: string | undefined;
  /** The fallback send this send triggered (WeChat → SMS). */
  fallback_send_id?: string | undefined;
  /** The send this one stands in for. */
  fallback_of?: string | undefined;
  occurred_at: string | null;
  updated_at: string;
}

/** The rendered SMS: what the SMS sender passes to Tencent's SendSms (one number). */
export interface SmsPayload {
  /** E.164. */
  phone: string;
  template_id: string;
  params: string[];
}

export type JobPayload = WeChatTemplatePayload | SmsPayload;

/** The job on `notify.send.<channel>`: everything a sender needs, with no lookup. */
export interface SendJob<P extends JobPayload = WeChatTemplatePayload> {
  send_id: string;
  event_id: string;
  event: string;
  channel: string;
  order_id: string;
  ticket_id: string | null;
  openid: string;
  language: string;
  template_id: string;
  occurred_at: string;
  /** The rendered channel payload (WeChat: the template/send body; SMS: number, template id, params). */
  payload: P;
  /** A fallback job: the send_id of the send it stands in for (the SMS after a WeChat refusal). */
  fallback_of?: string;
  /**
   * WeChat jobs of a template with `fallback: sms`: the SMS job, rendered by the dispatcher,
   * that the sender publishes (once) if WeChat refuses the traveller for good.
   */
  fallback?: SmsSendJob;
}

export type SmsSendJob = SendJob<SmsPayload>;

export interface WeChatTemplatePayload {
  touser: string;
  template_id: string;
  url?: string;
  miniprogram?: { appid: string; pagepath?: string };
  client_msg_id?: string;
  data: Record<string, { value: string; color?: string }>;
}

/** Value stored in `notification_locks`. */
export interface LockValue {
  send_id: string;
  event_id: string;
  at: string;
}

/** Published on `notification.sent`. */
export interface SentFact {
  send_id: string;
  event_id: string;
  event: string;
  channel: string;
  order_id: string;
  ticket_id: string | null;
  attempts: number;
  sent_at: string;
  wechat_msgid?: string;
}

/** Published on `notification.delivered` / `notification.undelivered` when a receipt arrives. */
export interface DeliveryFact {
  send_id: string;
  event_id: string;
  event: string;
  channel: string;
  order_id: string | null;
  ticket_id: string | null;
  status: "delivered" | "blocked" | "undelivered";
  /** WeChat sends: the msgid the receipt named. */
  wechat_msgid?: string;
  /** SMS sends: the SerialNo (`sid`) the status report named. */
  sms_serial_no?: string;
  /** WeChat's Status text, e.g. `failed:user block`; SMS: `SUCCESS` or `FAIL: <errmsg>`. */
  receipt_status: string;
  /** When WeChat created the receipt (its CreateTime); SMS: the user_receive_time. */
  receipt_at: string;
}

/** Published on `notification.alert`. */
export interface AlertFact {
  /** `quota_usage`: today's provider quota is used past the alert share (e.g. 80 %) — before 45009 parks sends. */
  /** `account_config`: WeChat refused the account itself (credentials, IP whitelist, API permission): every send fails until the console is fixed. */
  kind: "account_config" | "consecutive_failures" | "dlq_depth" | "quota_exceeded" | "quota_usage" | "token_refresh_budget";
  channel: string;
  message: string;
  value: number;
  threshold: number;
  at: string;
}

/**
 * The record a job stands for, rebuilt from the job alone: the dispatcher's `queued`
 * record (for a compare-and-set without a read) or a stand-in when a record is missing.
 */
export function recordFromJob(job: SendJob<JobPayload>, status: Status = Status.queued, now: Date | string = new Date()): SendRecord {
  return {
    send_id: job.send_id,
    event_id: job.event_id,
    event: job.event,
    order_id: job.order_id,
    ticket_id: job.ticket_id,
    channel: job.channel,
    language: job.language,
    template_id: job.template_id,
    openid: job.openid,
    status,
    attempts: 0,
    occurred_at: job.occurred_at,
    updated_at: typeof now === "string" ? now : now.toISOString(),
    ...(isSmsPayload(job.payload) ? { phone: maskPhone(job.payload.phone) } : {}),
    ...(job.fallback_of ? { fallback_of: job.fallback_of } : {}),
  };
}

export function isSmsPayload(p: JobPayload): p is SmsPayload {
  return typeof (p as SmsPayload).phone === "string" && Array.isArray((p as SmsPayload).params);
}
