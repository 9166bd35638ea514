import { Type } from "typebox";
import { Status } from "@notify/contracts";

const Time = (description: string) => Type.String({ format: "date-time", maxLength: 40, description });
const Text = (description: string) => Type.String({ minLength: 1, maxLength: 128, description });

/** Every filter of GET /notifications/sends; an unknown parameter is a 400 naming it. */
export const SendSearchQuery = Type.Object(
  {
    status: Type.Optional(Type.Enum(Object.values(Status), { description: "Current status" })),
    event: Type.Optional(Text("Event type, e.g. order.paid (rejected events keep the subject's)")),
    channel: Type.Optional(Type.String({ maxLength: 32, description: "Channel, e.g. wechat" })),
    openid: Type.Optional(Text("The traveller's WeChat openid")),
    order_id: Type.Optional(Text("Order id")),
    ticket_id: Type.Optional(Text("Ticket id")),
    created_from: Type.Optional(Time("First recorded at or after (inclusive)")),
    created_to: Type.Optional(Time("First recorded before (exclusive)")),
    updated_from: Type.Optional(Time("Last changed at or after (inclusive)")),
    updated_to: Type.Optional(Time("Last changed before (exclusive)")),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50, description: "Page size" }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400, description: "next_cursor of the previous page" })),
  },
  { additionalProperties: false },
);

const nullable = (t: ReturnType<typeof Type.String>) => Type.Union([t, Type.Null()]);

export const SendRowSchema = Type.Object({
  send_id: Type.String(),
  revision: Type.Integer({ description: "KV revision the row was projected from" }),
  event_id: Type.String(),
  event: Type.String(),
  order_id: nullable(Type.String()),
  ticket_id: nullable(Type.String()),
  channel: Type.String(),
  language: nullable(Type.String()),
  template_id: nullable(Type.String()),
  openid: nullable(Type.String()),
  status: Type.String(),
  attempts: Type.Integer(),
  last_error: nullable(Type.String()),
  reason: nullable(Type.String()),
  occurred_at: nullable(Type.String()),
  sent_at: nullable(Type.String()),
  receipt_status: nullable(Type.String({ description: "The provider's delivery receipt, e.g. success, failed:user block" })),
  receipt_at: nullable(Type.String({ description: "When the provider reported the delivery" })),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export const SendSearchResponse = Type.Object(
  {
    items: Type.Array(SendRowSchema),
    count: Type.Integer({ description: "Items on this page" }),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as cursor for the next page; null on the last" }),
  },
  { description: "Sends, newest first (by created_at, then send_id), from the SQL send log" },
);

export const HistoryRowSchema = Type.Object({
  revision: Type.Integer(),
  operation: Type.String(),
  status: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Union([Type.Integer(), Type.Null()]),
  reason: nullable(Type.String()),
  last_error: nullable(Type.String()),
  updated_at: nullable(Type.String()),
});

export const OrderParams = Type.Object({ order_id: Text("Order id (URL-encoded)") });

export const OrderQuery = Type.Object(
  { limit: Type.Integer({ minimum: 1, maximum: 1000, default: 200, description: "Sends at most" }) },
  { additionalProperties: false },
);

export const OrderResponse = Type.Object(
  {
    order_id: Type.String(),
    items: Type.Array(Type.Object({ ...SendRowSchema.properties, history: Type.Array(HistoryRowSchema, { description: "Newest first" }) })),
    count: Type.Integer(),
    truncated: Type.Boolean({ description: "More sends than limit" }),
  },
  { description: "Every send of the order, newest first, each with its status history" },
);

export const StatsQuerySchema = Type.Object(
  {
    from: Type.Optional(Time("Start (inclusive); default: 24 hours before `to`")),
    to: Type.Optional(Time("End (exclusive); default: now")),
    interval: Type.Enum(["hour", "day"], { default: "hour", description: "Bucket size (UTC)" }),
    by: Type.Enum(["created", "updated"], { default: "created", description: "Which time places a send in a bucket" }),
  },
  { additionalProperties: false },
);

export const StatsResponse = Type.Object(
  {
    from: Type.String(),
    to: Type.String(),
    interval: Type.String(),
    by: Type.String(),
    buckets: Type.Array(
      Type.Object({ start: Type.String(), status: Type.String(), event: Type.String(), channel: Type.String(), count: Type.Integer() }),
      { description: "One row per (bucket start, status, event, channel) with sends; absent rows are 0" },
    ),
    total: Type.Integer(),
  },
  { description: "Counts by status × event × channel per hour or day" },
);
