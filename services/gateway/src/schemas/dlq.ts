import { Type } from "typebox";
import { CHANNELS } from "@notify/contracts";
import { SendRecordSchema } from "./sends.js";
import { SmsPayloadSchema, WeChatPayloadSchema } from "./preview.js";

/**
 * A stream sequence, 1 to 2^53−1, as the canonical decimal string: bounded by the pattern
 * itself, so `9007199254740993` or `1.0000000000000001` is a 400, never a number rounded
 * onto another entry (a JSON number loses integers past 2^53).
 */
export const STREAM_SEQ_PATTERN = decimalUpTo(Number.MAX_SAFE_INTEGER);

const StreamSeq = (description: string) => Type.String({ pattern: STREAM_SEQ_PATTERN, maxLength: 16, description, examples: ["1"] });

/** A regular expression for the decimal integers 1..max (no sign, no leading zeros). */
function decimalUpTo(max: number): string {
  const m = String(max);
  const alts = m.length > 1 ? [`[1-9]\\d{0,${m.length - 2}}`] : [];
  for (let i = 0; i < m.length; i++) {
    const d = Number(m[i]);
    const lo = i === 0 ? 1 : 0;
    if (d > lo) alts.push(`${m.slice(0, i)}[${lo}-${d - 1}]\\d{${m.length - i - 1}}`);
  }
  alts.push(m);
  return `^(?:${alts.join("|")})$`;
}

const entryFields = {
  seq: Type.Integer({ description: "Stream sequence in DLQ: the id for inspect, replay and discard" }),
  subject: Type.String(),
  channel: Type.String(),
  received_at: Type.String({ format: "date-time" }),
};

const summaryFields = {
  ...entryFields,
  readable: Type.Literal(true, { description: "The entry is a job" }),
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

/** A message on notify.dlq.<channel> that is not a job: shown so it can be discarded. */
export const DlqUnreadable = Type.Object(
  {
    ...entryFields,
    readable: Type.Literal(false, { description: "Not a job: it can only be discarded" }),
    size: Type.Integer({ description: "Body size in bytes" }),
    headers: Type.Array(Type.Object({ name: Type.String(), value: Type.String() }), { description: "The first 32 headers, values cut at 512 characters" }),
    error: Type.String({ description: "Why it is not a job" }),
  },
  { description: "A message that is not a job" },
);

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
  payload: Type.Union([WeChatPayloadSchema, SmsPayloadSchema], { description: "WeChat: the template/send body; SMS: the number (masked here), template id and params" }),
  fallback_of: Type.Optional(Type.String({ description: "A fallback job: the send_id it stands in for" })),
});

export const DlqEntry = Type.Union(
  [
    Type.Object(
      {
        ...summaryFields,
        job: SendJobSchema,
        record: Type.Optional(SendRecordSchema),
      },
      { description: "The dead job, why it died and the current send record" },
    ),
    DlqUnreadable,
  ],
  { description: "A dead job, or a message that is not one (readable: false)" },
);

export const DlqListQuery = Type.Object({
  channel: Type.Optional(Type.Enum(CHANNELS)),
  from_seq: Type.Optional(StreamSeq("Start at this stream sequence (next_seq of the previous page)")),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});

export const DlqListResponse = Type.Object(
  {
    items: Type.Array(Type.Union([DlqEntrySummary, DlqUnreadable])),
    count: Type.Integer({ description: "Items on this page" }),
    total: Type.Integer({ description: "Messages in the DLQ stream (all channels)" }),
    first_seq: Type.Integer(),
    last_seq: Type.Integer(),
    next_seq: Type.Optional(Type.Integer({ description: "Pass as from_seq for the next page; absent on the last page" })),
  },
  { description: "Dead-lettered jobs, oldest first" },
);

export const DlqParams = Type.Object({ seq: StreamSeq("Stream sequence of the entry in DLQ (1 to 2^53−1)") });

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
