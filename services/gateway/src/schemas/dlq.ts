import { Type } from "typebox";
import { CHANNELS } from "@notify/contracts";
import { SendRecordSchema } from "./sends.js";
import { WeChatPayloadSchema } from "./preview.js";

const summaryFields = {
  seq: Type.Integer({ description: "Stream sequence in DLQ: the id for inspect, replay and discard" }),
  subject: Type.String(),
  channel: Type.String(),
  received_at: Type.String({ format: "date-time" }),
  send_id: Type.String(),
  attempts: Type.Integer(),
  reason: Type.String({ description: "wechat_permanent, max_deliveries, ..." }),
  last_error: Type.String(),
  event: Type.String(),
  event_id: Type.String(),
  order_id: Type.String(),
  ticket_id: Type.Union([Type.String(), Type.Null()]),
};

export const DlqEntrySummary = Type.Object(summaryFields);

export const SendJobSchema = Type.Object({
  send_id: Type.String(),
  event_id: Type.String(),
  event: Type.String(),
  channel: Type.String(),
  order_id: Type.String(),
  ticket_id: Type.Union([Type.String(), Type.Null()]),
  openid: Type.String(),
  language: Type.String(),
  template_id: Type.String(),
  occurred_at: Type.String(),
  payload: WeChatPayloadSchema,
});

export const DlqEntry = Type.Object(
  {
    ...summaryFields,
    job: SendJobSchema,
    record: Type.Optional(SendRecordSchema),
  },
  { description: "The dead job, why it died and the current send record" },
);

export const DlqListQuery = Type.Object({
  channel: Type.Optional(Type.Enum(CHANNELS)),
  from_seq: Type.Optional(Type.Integer({ minimum: 1, description: "Start at this stream sequence (next_seq of the previous page)" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});

export const DlqListResponse = Type.Object(
  {
    items: Type.Array(DlqEntrySummary),
    count: Type.Integer({ description: "Items on this page" }),
    total: Type.Integer({ description: "Messages in the DLQ stream (all channels)" }),
    first_seq: Type.Integer(),
    last_seq: Type.Integer(),
    next_seq: Type.Optional(Type.Integer({ description: "Pass as from_seq for the next page; absent on the last page" })),
  },
  { description: "Dead-lettered jobs, oldest first" },
);

export const DlqParams = Type.Object({ seq: Type.Integer({ minimum: 1 }) });

export const DlqReplayResponse = Type.Object(
  {
    seq: Type.Integer(),
    send_id: Type.String(),
    channel: Type.String(),
    status: Type.Literal("queued"),
    msg_id: Type.String({ description: "Nats-Msg-Id of the replayed job" }),
    sends_seq: Type.Integer({ description: "Sequence of the job in SENDS" }),
    duplicate: Type.Boolean(),
  },
  { description: "Back on the send queue with a fresh attempt budget; removed from the DLQ" },
);
