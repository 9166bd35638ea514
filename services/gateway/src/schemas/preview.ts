import { Type } from "typebox";
import { CHANNELS, EVENT_TYPES } from "@notify/contracts";
import { Locale } from "./common.js";

export const PreviewBody = Type.Object(
  {
    event: Type.Enum(EVENT_TYPES, { description: "Business event type" }),
    data: Type.Record(Type.String(), Type.Unknown(), { description: "The event's data, as a publisher would send it" }),
    language: Type.Optional(Locale("Traveller locale; falls back to the language, then zh-CN")),
    channel: Type.Optional(Type.Enum(CHANNELS, { default: "wechat" })),
    openid: Type.Optional(Type.String({ minLength: 1, maxLength: 128, default: "PREVIEW_OPENID", description: "Recipient shown in touser" })),
    phone: Type.Optional(Type.String({ pattern: "^\\+[1-9][0-9]{6,14}$", description: "SMS: the recipient's number (E.164); default +8613800000000" })),
    order_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "With it, the payload carries the real client_msg_id (send_id)" })),
    ticket_id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()])),
  },
  { additionalProperties: false },
);

export const WeChatPayloadSchema = Type.Object(
  {
    touser: Type.String(),
    template_id: Type.String(),
    url: Type.Optional(Type.String()),
    miniprogram: Type.Optional(Type.Object({ appid: Type.String(), pagepath: Type.Optional(Type.String()) })),
    client_msg_id: Type.Optional(Type.String()),
    data: Type.Record(Type.String(), Type.Object({ value: Type.String(), color: Type.Optional(Type.String()) })),
  },
  { description: "The body of WeChat's message/template/send call (without the access token)" },
);

/** A keyword value against WeChat's rule for its type, and what the template's policy does. */
export const FieldFindingSchema = Type.Object(
  {
    field: Type.String({ description: "The keyword, e.g. thing1" }),
    rule: Type.String({ description: "The rule its prefix selects (thing, amount, time, …), or obsolete_key / color" }),
    problem: Type.Enum(["empty", "line_break", "too_long", "format", "obsolete_key", "color"]),
    message: Type.String(),
    action: Type.Enum(["truncate", "reject", "drop"], { description: "truncate: sent cut; reject: the send is recorded failed (field_rule); drop: not sent" }),
  },
  { additionalProperties: false },
);

export const SmsPayloadSchema = Type.Object(
  {
    phone: Type.String(),
    template_id: Type.String({ description: "Tencent template id" }),
    params: Type.Array(Type.String(), { description: "TemplateParamSet, in order" }),
  },
  { description: "What the SMS sender passes to Tencent's SendSms" },
);

export const PreviewResponse = Type.Object(
  {
    payload: Type.Union([WeChatPayloadSchema, SmsPayloadSchema]),
    template: Type.Object({
      event: Type.String(),
      channel: Type.String(),
      language: Type.String(),
      template_id: Type.String(),
      enabled: Type.Boolean(),
      revision: Type.Integer(),
    }),
    send_id: Type.Optional(Type.String({ description: "The send_id of (event, order_id, ticket_id, channel) when order_id is given" })),
    field_policy: Type.Enum(["truncate", "reject"], { description: "The template's policy for values that break WeChat's keyword rules" }),
    violations: Type.Array(FieldFindingSchema, { description: "Each value that breaks its keyword rule, dropped key and dropped colour, with the policy's action" }),
    would_send: Type.Boolean({ description: "false when the template is disabled (recorded skipped) or a violation rejects the send (recorded failed, field_rule)" }),
    would_record: Type.Optional(Type.String({ description: "When would_send is false: the record the dispatcher writes, e.g. `skipped: disabled`, `failed: field_rule`" })),
  },
  { description: "Rendered payload" },
);
