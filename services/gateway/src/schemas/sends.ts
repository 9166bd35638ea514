import { Type } from "typebox";
import { CHANNELS, EVENT_TYPES, Status } from "@notify/contracts";

export const SendRecordSchema = Type.Object(
  {
    send_id: Type.String(),
    event_id: Type.String(),
    event: Type.String(),
    order_id: Type.Union([Type.String(), Type.Null()]),
    ticket_id: Type.Union([Type.String(), Type.Null()]),
    channel: Type.String(),
    language: Type.Union([Type.String(), Type.Null()]),
    template_id: Type.Union([Type.String(), Type.Null()]),
    openid: Type.Union([Type.String(), Type.Null()]),
    status: Type.Enum(Object.values(Status)),
    attempts: Type.Integer(),
    reason: Type.Optional(Type.String()),
    last_error: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Unknown())),
    sent_at: Type.Optional(Type.String()),
    wechat_msgid: Type.Optional(Type.String()),
    receipt_status: Type.Optional(Type.String({ description: "The delivery receipt: WeChat's Status (success, failed:user block) or the SMS report's status and errmsg (SUCCESS:DELIVRD, FAIL:MK:0001)" })),
    receipt_at: Type.Optional(Type.String({ description: "When the provider reported the delivery (WeChat's CreateTime, the SMS user_receive_time)" })),
    sms_serial_no: Type.Optional(Type.String({ description: "SMS: Tencent's SerialNo (the sid of its status report)" })),
    phone: Type.Optional(Type.String({ description: "SMS: the number, masked (all but the last 4 digits)" })),
    fallback_send_id: Type.Optional(Type.String({ description: "The SMS send this WeChat send fell back to (43004, 40003, failed:user block)" })),
    fallback_of: Type.Optional(Type.String({ description: "The WeChat send this SMS stands in for" })),
    next_attempt_at: Type.Optional(Type.String({ description: "While retrying: when the next attempt is due" })),
    uncertain_since: Type.Optional(
      Type.String({ description: "When the first call with no answer (a timeout, a lost connection) began: WeChat may have delivered it, and a retry is only made within its 10-minute client_msg_id window" }),
    ),
    occurred_at: Type.Union([Type.String(), Type.Null()]),
    updated_at: Type.String(),
  },
  { additionalProperties: true },
);

export const SendLogResponse = Type.Object(
  {
    send_id: Type.String(),
    revision: Type.Integer({ description: "KV revision of the current record" }),
    record: SendRecordSchema,
    history: Type.Optional(Type.Array(SendRecordSchema, { description: "Every status the record went through, oldest first (absent with history=false)" })),
  },
  { description: "The send record and its status history" },
);

export const HistoryQuery = Type.Object({
  history: Type.Optional(Type.Boolean({ default: true, description: "false = only the current record (cheaper for pollers)" })),
});

export const SendParams = Type.Object({
  send_id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[-\\w=]+$", description: "e.g. snd_<32 hex>" }),
});

export const SendLookupQuery = Type.Object({
  event: Type.Enum(EVENT_TYPES),
  order_id: Type.String({ minLength: 1, maxLength: 128 }),
  ticket_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  channel: Type.Optional(Type.Enum(CHANNELS, { default: "wechat" })),
  history: HistoryQuery.properties.history,
});
