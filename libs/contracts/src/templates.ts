import { Type, type Static } from "typebox";
import { CHANNELS, EVENT_TYPES } from "./names.js";
import { DEFAULT_LANGUAGE } from "./keys.js";

/** Tencent counts every character (汉字, letter, digit, punctuation, space) as one. Personal accounts: 12 per parameter. */
export const SMS_PARAM_MAX_CHARS = 12;
/** The whole SMS (signature + text + parameters) stays within 500 characters. */
export const SMS_MAX_CHARS = 500;
export const SMS_MAX_PARAMS = 20;

/** A WeChat keyword field: a Handlebars expression, or one with a colour. */
export const TemplateFieldSchema = Type.Union([
  Type.String({ maxLength: 2000 }),
  Type.Object(
    { value: Type.String({ maxLength: 2000 }), color: Type.Optional(Type.String({ pattern: "^#[0-9A-Fa-f]{6}$" })) },
    { additionalProperties: false },
  ),
]);

/**
 * What the dispatcher does with a rendered value that breaks WeChat's keyword rule:
 * `truncate` repairs what cutting can repair (and rejects the rest), `reject` records the
 * send `failed` with reason `field_rule`.
 */
export const FieldPolicySchema = Type.Union([Type.Literal("truncate"), Type.Literal("reject")], {
  default: "truncate",
  description: "truncate: a thing value is cut to 19 characters + …, line breaks removed; reject: the send is recorded failed (field_rule)",
});
export type FieldPolicy = Static<typeof FieldPolicySchema>;

export const MiniprogramSchema = Type.Object(
  { appid: Type.String({ minLength: 1, maxLength: 64 }), pagepath: Type.Optional(Type.String({ maxLength: 512 })) },
  { additionalProperties: false },
);

/** What an admin sends to `POST /notifications/templates` (the original admin contract, extended). */
export const TemplateInputSchema = Type.Object(
  {
    event: Type.Enum(EVENT_TYPES),
    channel: Type.Enum(CHANNELS),
    template_id: Type.String({ minLength: 1, maxLength: 128 }),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    payload_schema: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "JSON Schema the event's data must satisfy" })),
    language: Type.Optional(
      Type.String({ default: DEFAULT_LANGUAGE, pattern: "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", maxLength: 35 }),
    ),
    data: Type.Optional(
      Type.Record(Type.String({ pattern: "^[A-Za-z][\\w]{0,63}$" }), TemplateFieldSchema, {
        description: "WeChat keyword → Handlebars expression over the event's data, e.g. {\"thing1\": \"{{title}}\"}",
      }),
    ),
    url: Type.Optional(Type.String({ maxLength: 1024, description: "Handlebars expression for the link" })),
    miniprogram: Type.Optional(MiniprogramSchema),
    field_policy: Type.Optional(FieldPolicySchema),
    params: Type.Optional(
      Type.Array(Type.String({ maxLength: 2000 }), {
        maxItems: SMS_MAX_PARAMS,
        description: "SMS only: Tencent's TemplateParamSet in the template's order, each a Handlebars expression over the event's data, e.g. [\"{{order_id}}\", \"{{amount}}\"]",
      }),
    ),
    param_max_length: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: SMS_MAX_CHARS,
        description: `SMS only: the most characters one rendered parameter may have (default ${SMS_PARAM_MAX_CHARS}, Tencent's limit for personal accounts; enterprise accounts have no per-parameter limit, only the ${SMS_MAX_CHARS}-character message)`,
      }),
    ),
    fallback: Type.Optional(
      Type.Enum(["sms"], { description: "WeChat only: when WeChat refuses the traveller for good (43004, 40003, a user-block receipt), send this event's SMS template once" }),
    ),
  },
  { additionalProperties: false },
);
export type TemplateInput = Static<typeof TemplateInputSchema>;

/** A stored template: the input with defaults applied plus bookkeeping. */
export interface Template {
  event: string;
  channel: string;
  language: string;
  template_id: string;
  enabled: boolean;
  payload_schema: Record<string, unknown>;
  data: Record<string, string | { value: string; color?: string }>;
  url?: string;
  miniprogram?: { appid: string; pagepath?: string };
  /** Absent on templates stored before it existed: `truncate`. */
  field_policy?: FieldPolicy;
  /** SMS templates: the ordered parameter expressions. */
  params?: string[];
  param_max_length?: number;
  /** WeChat templates: send the SMS template when the traveller cannot be reached on WeChat. */
  fallback?: "sms";
  updated_at: string;
  /** Who wrote this revision: the gateway's id of the API key (a hash prefix, never the key). */
  updated_by?: string;
  /** Set on a revision written by a rollback: the revision whose content it restored. */
  rolled_back_to?: number;
}
