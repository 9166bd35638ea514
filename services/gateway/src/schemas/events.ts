import { Type } from "typebox";

export const PublishResponse = Type.Object(
  {
    id: Type.String({ description: "The event id (Nats-Msg-Id)" }),
    subject: Type.String(),
    seq: Type.Integer({ description: "Sequence in the EVENTS stream" }),
    duplicate: Type.Boolean({ description: "JetStream saw this id within its duplicate window: stored once" }),
    sends: Type.Array(
      Type.Object({
        channel: Type.String(),
        send_id: Type.String({ pattern: "^snd_[0-9a-f]{32}$", description: "Derived from (event, order_id, ticket_id, channel): known before dispatch" }),
        href: Type.String({ description: "GET it (same bearer key) to follow the send; 404 until the dispatcher has recorded it" }),
      }),
      { description: "The sends to follow, one per channel of this deployment (CHANNELS)" },
    ),
  },
  { description: "Accepted onto the bus" },
);

export const TraceHeaders = Type.Object({
  traceparent: Type.Optional(Type.String({ description: "W3C trace context; the event joins this trace" })),
});
