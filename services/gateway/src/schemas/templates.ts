import { Type } from "typebox";
import { CHANNELS, EVENT_TYPES, FieldPolicySchema, MiniprogramSchema, TemplateFieldSchema, TemplateInputSchema } from "@notify/contracts";
import { FieldFindingSchema } from "./preview.js";
import { Locale } from "./common.js";

/** The admin contract's upsert body (event, channel, template_id required; enabled defaults to true). */
export const TemplateBody = TemplateInputSchema;

const templateFields = {
    event: Type.String(),
    channel: Type.String(),
    language: Type.String(),
    template_id: Type.String(),
    enabled: Type.Boolean(),
    payload_schema: Type.Object({}, { additionalProperties: true, description: "JSON Schema the event's data must satisfy" }),
    data: Type.Record(Type.String(), TemplateFieldSchema, { description: "WeChat keyword → Handlebars expression" }),
    url: Type.Optional(Type.String()),
    miniprogram: Type.Optional(MiniprogramSchema),
    field_policy: Type.Optional(FieldPolicySchema),
    params: Type.Optional(Type.Array(Type.String(), { description: "SMS: TemplateParamSet expressions, in order" })),
    param_max_length: Type.Optional(Type.Integer({ description: "SMS: most characters per rendered parameter" })),
    fallback: Type.Optional(Type.Enum(["sms"], { description: "WeChat: SMS fallback on a permanent recipient failure" })),
    updated_at: Type.String({ format: "date-time" }),
    updated_by: Type.Optional(Type.String({ description: "Who wrote this revision: the gateway's id of the API key (a hash prefix, never the key)" })),
    rolled_back_to: Type.Optional(Type.Integer({ description: "Written by a rollback: the revision whose content this one restored" })),
};

export const StoredTemplateSchema = Type.Object(
  { ...templateFields, revision: Type.Integer({ description: "KV revision; send it back as If-Match to edit safely" }) },
  { description: "A stored template" },
);

export const TemplateWriteResponse = (description: string) =>
  Type.Object(
    {
      template: StoredTemplateSchema,
      created: Type.Boolean(),
      warnings: Type.Array(FieldFindingSchema, { description: "Stored but never sent: `first`/`remark` keys and colours, which WeChat no longer shows" }),
    },
    { description },
  );

export const TemplateListQuery = Type.Object({
  event: Type.Optional(Type.Enum(EVENT_TYPES)),
  channel: Type.Optional(Type.Enum(CHANNELS)),
  language: Type.Optional(Locale("Exact language tag, e.g. zh-CN")),
  enabled: Type.Optional(Type.Boolean()),
});

export const TemplateListResponse = Type.Object(
  { items: Type.Array(StoredTemplateSchema), count: Type.Integer() },
  { description: "Templates" },
);

export const TemplateParams = Type.Object({
  event: Type.Enum(EVENT_TYPES),
  channel: Type.Enum(CHANNELS),
  language: Locale("Exact language tag, e.g. zh-CN"),
});

export const TemplateHistoryResponse = Type.Object(
  {
    key: Type.String(),
    items: Type.Array(
      Type.Object({
        revision: Type.Integer(),
        operation: Type.Enum(["PUT", "DEL", "PURGE"]),
        at: Type.String({ format: "date-time" }),
        template: Type.Optional(Type.Object(templateFields, { description: "The template as stored at this revision" })),
      }),
    ),
  },
  { description: "Edits of one template, oldest first (the KV history)" },
);

export const RollbackBody = Type.Object(
  {
    revision: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "The revision to restore: a PUT revision from the template's history" }),
  },
  { additionalProperties: false },
);
