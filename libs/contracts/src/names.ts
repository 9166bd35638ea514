/**
 * The one owner of every NATS name in the system: subjects, streams, consumers, KV
 * buckets, header names and message-id formats. Nothing else spells these strings.
 */

export const EVENT_TYPES = [
  "order.paid",
  "order.cancelled",
  "ticket.refunded",
  "ticket.expired",
  "ticket.redeemed",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Channels a template can target. Only `wechat` has a sender today; SMS is off by default. */
export const CHANNELS = ["wechat", "sms"] as const;
export type Channel = (typeof CHANNELS)[number];

export const Streams = {
  events: "EVENTS",
  sends: "SENDS",
  dlq: "DLQ",
  advisories: "ADVISORIES",
  notifications: "NOTIFICATIONS",
} as const;

export const Subjects = {
  /** Where publishers emit a business event. */
  event: (event: EventType | string) => `events.${event}`,
  eventsAll: "events.>",
  /** The work queue of one channel. */
  send: (channel: Channel | string) => `notify.send.${channel}`,
  sendsAll: "notify.send.*",
  dlq: (channel: Channel | string) => `notify.dlq.${channel}`,
  dlqAll: "notify.dlq.*",
  /** Server advisories for jobs that ran out of deliveries on any SENDS consumer. */
  maxDeliveriesAll: `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SENDS.>`,
  maxDeliveries: (consumer: string) =>
    `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SENDS.${consumer}`,
  /** Outbound facts for other services. */
  sent: "notification.sent",
  failed: "notification.failed",
  dead: "notification.dead",
  /** A delivery receipt (WeChat) or status report (SMS) said the user got the message. */
  delivered: "notification.delivered",
  /** A delivery receipt said the message did not reach the user (blocked or system failure). */
  undelivered: "notification.undelivered",
  alert: "notification.alert",
  notificationsAll: "notification.>",
} as const;

export const Consumers = {
  dispatcher: "dispatcher",
  sender: (channel: Channel | string) => `sender-${channel}`,
  dlqMonitor: "dlq-monitor",
  /**
   * The send-log projector's durable consumer on one bucket's stream. `name` tells apart
   * projectors that fill different databases from the same buckets (one per database).
   */
  projector: (bucket: string, name = "sendlog") => `${name}-${bucket}`,
} as const;

export const Buckets = {
  templates: "notification_templates",
  locks: "notification_locks",
  records: "notification_events",
  tokens: "wechat_tokens",
  /**
   * Provider message ids → send_id, written by the senders and read by the gateway's
   * delivery callbacks: WeChat msgids, Tencent SMS SerialNos, a WeChat send's prepared
   * SMS fallback, and the de-duplication of pushes. (Named when only WeChat used it.)
   */
  msgids: "wechat_msgids",
} as const;

/** The stream JetStream keeps a KV bucket in (its messages are the bucket's revisions). */
export const kvStream = (bucket: string): string => `KV_${bucket}`;
/** Subject prefix of a KV bucket's messages: `$KV.<bucket>.<key>`. */
export const kvSubjectPrefix = (bucket: string): string => `$KV.${bucket}.`;

/**
 * Header names carried on NATS messages. Not called `Headers`: that would shadow the
 * global `Headers` of fetch in every file that imports it.
 */
export const HeaderNames = {
  msgId: "Nats-Msg-Id",
  traceparent: "traceparent",
  /** KV revision of the `queued` record, so the sender can compare-and-set without a read. */
  recordRevision: "Notify-Record-Rev",
  sendId: "Notify-Send-Id",
  attempts: "Notify-Attempts",
  lastError: "Notify-Last-Error",
  reason: "Notify-Reason",
  /** Set by KV on a delete (`DEL`) or purge (`PURGE`) marker. */
  kvOperation: "KV-Operation",
  /** A job parked for a provider quota: not to be tried before this time (ms since the epoch)… */
  notBefore: "Notify-Not-Before",
  /** …and the attempts it had made before the park. */
  attemptsBefore: "Notify-Attempts-Before",
} as const;

/**
 * The `Nats-Msg-Id` of everything the services publish besides events (whose id is the
 * envelope's). A second publish with the same id inside a stream's 2-minute duplicate
 * window is stored once, so each format says what counts as "the same message".
 */
export const MsgIds = {
  /** A job: its send_id (also WeChat's client_msg_id). */
  job: (sendId: string) => sendId,
  /** A job published again by an operator's replay of DLQ entry `dlqSeq`. */
  replay: (sendId: string, dlqSeq: number) => `${sendId}.replay.${dlqSeq}`,
  /**
   * A job parked for the provider's quota after `attempts` attempts, from SENDS sequence
   * `sourceSeq`: a retried park of one delivery is stored once, while a parked copy parked
   * again (same attempts, no call in between) is a new message, not a duplicate.
   */
  park: (sendId: string, attempts: number, sourceSeq: number) => `${sendId}.park.${attempts}.${sourceSeq}`,
  /** A DLQ copy; the source sequence lets a replayed job that dies again be copied again. */
  dlq: (sendId: string, attempts: number, reason: string, sourceSeq?: number) =>
    sourceSeq !== undefined ? `dlq.${sendId}.${attempts}.${reason}.${sourceSeq}` : `dlq.${sendId}.${attempts}.${reason}`,
  /** `notification.sent`: one per send. */
  sent: (sendId: string) => `sent.${sendId}`,
  /** `notification.failed`. */
  failed: (sendId: string, attempts: number) => `failed.${sendId}.${attempts}`,
  /** `notification.dead`, per dead-lettered job at SENDS sequence `seq` (by the sender or a MAX_DELIVERIES advisory). */
  dead: (sendId: string, seq: number) => `dead.${sendId}.${seq}`,
  /** `notification.delivered` / `.undelivered`: one per send (the first receipt that moved it). */
  delivery: (sendId: string) => `receipt.${sendId}`,
  /** `notification.alert`: `ref` names what triggered it (a fact, a time window). */
  alert: (kind: string, channel: string, ref: string | number) => `alert.${kind}.${channel}.${ref}`,
} as const;
