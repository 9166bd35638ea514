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

export const PreviewResponse = Type.Object(
  {
    payload: WeChatPayloadSchema,
    template: Type.Object({
      event: Type.String(),
      channel: Type.String(),
      language: Type.String(),
      template_id: Type.String(),
      enabled: Type.Boolean(),
      revision: Type.Integer(),
    }),
    send_id: Type.Optional(Type.String({ description: "The send_id of (event, order_id, ticket_id, channel) when order_id is given" })),
    would_send: Type.Boolean({ description: "false when the template is disabled: the dispatcher records skipped instead" }),
  },
  { description: "Rendered payload" },
);
