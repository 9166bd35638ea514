/**
 * The one owner of every NATS name in the system: subjects, streams, consumers and
 * KV buckets. Nothing else spells these strings.
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
  alert: "notification.alert",
  notificationsAll: "notification.>",
} as const;

export const Consumers = {
  dispatcher: "dispatcher",
  sender: (channel: Channel | string) => `sender-${channel}`,
  dlqMonitor: "dlq-monitor",
} as const;

export const Buckets = {
  templates: "notification_templates",
  locks: "notification_locks",
  records: "notification_events",
  tokens: "wechat_tokens",
} as const;

/** Header names carried on NATS messages. */
export const Headers = {
  msgId: "Nats-Msg-Id",
  traceparent: "traceparent",
  /** KV revision of the `queued` record, so the sender can compare-and-set without a read. */
  recordRevision: "Notify-Record-Rev",
  sendId: "Notify-Send-Id",
  attempts: "Notify-Attempts",
  lastError: "Notify-Last-Error",
  reason: "Notify-Reason",
} as const;
