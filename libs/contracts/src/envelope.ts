import { Type, type Static } from "typebox";
import { EVENT_TYPES } from "./names.js";

/** Business ids end up in KV keys (encoded) and logs: bound their size. */
const Id = (description: string) => Type.String({ minLength: 1, maxLength: 128, description });

export const RecipientSchema = Type.Object(
  {
    openid: Type.String({ minLength: 1, maxLength: 128, pattern: "^[\\w-]+$", description: "WeChat openid of the traveller" }),
    phone: Type.Optional(
      Type.String({ pattern: "^\\+[1-9][0-9]{6,14}$", maxLength: 16, description: "Mobile number in E.164 (+ country code, 7-15 digits), e.g. +8613812345678; used by SMS templates and the SMS fallback" }),
    ),
    locale: Type.Optional(
      Type.String({ pattern: "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", maxLength: 35, description: "BCP 47 locale, e.g. en-US; falls back to the language, then zh-CN" }),
    ),
  },
  { additionalProperties: false },
);

/**
 * The event envelope every publisher emits on `events.<event>` with `Nats-Msg-Id: <id>`.
 * `schemas/event-envelope.schema.json` is generated from this value (npm run schemas).
 */
export const EventEnvelopeSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[\\w.:-]+$", description: "Unique event id; also the Nats-Msg-Id" }),
    event: Type.Enum(EVENT_TYPES, { description: "Business event type" }),
    occurred_at: Type.String({ format: "date-time", description: "When the business fact happened (RFC 3339)" }),
    order_id: Id("Order the event is about"),
    ticket_id: Type.Optional(Type.Union([Id("Ticket the event is about, if any"), Type.Null()])),
    recipient: RecipientSchema,
    data: Type.Record(Type.String(), Type.Unknown(), { description: "Fields the template renders; validated against its payload_schema" }),
  },
  { $id: "https://notify.example/schemas/event-envelope.json", title: "EventEnvelope", additionalProperties: true },
);
export type EventEnvelope = Static<typeof EventEnvelopeSchema>;

/** Largest envelope accepted on the bus or over HTTP, in bytes. */
export const MAX_ENVELOPE_BYTES = 64 * 1024;
