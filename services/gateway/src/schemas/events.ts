import { Type } from "typebox";

export const PublishResponse = Type.Object(
  {
    id: Type.String({ description: "The event id (Nats-Msg-Id)" }),
    subject: Type.String(),
    seq: Type.Integer({ description: "Sequence in the EVENTS stream" }),
    duplicate: Type.Boolean({ description: "JetStream saw this id within its duplicate window: stored once" }),
  },
  { description: "Accepted onto the bus" },
);

export const TraceHeaders = Type.Object({
  traceparent: Type.Optional(Type.String({ description: "W3C trace context; the event joins this trace" })),
});
