/**
 * The examples Swagger UI shows and fills in: real requests and the answers they get,
 * built on the example order.paid zh-CN template `npm start` seeds. A test validates each
 * against its schema and executes the preview example against a running gateway.
 *
 * Safety: the upsert example writes the key `order.paid/wechat/zh-CN-example`, a language
 * no traveller's locale resolves to, so an Execute on the unedited example can never
 * replace the live `order.paid/wechat/zh-CN`; editing a live template is a deliberate
 * change of `language` (and an If-Match to be safe).
 */
import { sendIdFor } from "@notify/contracts";

/** The language of the upsert example: a key of its own, never a traveller's locale. */
export const EXAMPLE_LANGUAGE = "zh-CN-example";

const PAID_SCHEMA = {
  type: "object",
  required: ["amount", "title"],
  properties: { amount: { type: "number" }, title: { type: "string" } },
};

/** The seeded order.paid zh-CN template's content. */
const PAID_CONTENT = {
  event: "order.paid",
  channel: "wechat",
  template_id: "TPL_ORDER_PAID_ZH",
  payload_schema: PAID_SCHEMA,
  data: { thing1: "{{title}}", amount2: "¥{{amount}}", character_string3: "{{order_id}}" },
  url: "https://m.example.com/orders/{{order_id}}",
};

export const UPSERT_EXAMPLE = { ...PAID_CONTENT, language: EXAMPLE_LANGUAGE, enabled: true };

const KEY_ID = "key:3f9a0c51d2e7";

/** The live template as the gateway returns it. */
export const STORED_EXAMPLE = {
  ...PAID_CONTENT,
  language: "zh-CN",
  enabled: true,
  updated_at: "2026-11-24T08:00:00.000Z",
  updated_by: KEY_ID,
  revision: 1,
};

export const WRITE_RESPONSE_EXAMPLE = {
  template: { ...UPSERT_EXAMPLE, updated_at: "2026-11-24T08:05:00.000Z", updated_by: KEY_ID, revision: 12 },
  created: true,
  warnings: [],
};

export const ROLLBACK_EXAMPLE = { revision: 1 };

export const ROLLBACK_RESPONSE_EXAMPLE = {
  template: { ...STORED_EXAMPLE, updated_at: "2026-11-24T09:30:00.000Z", revision: 14, rolled_back_to: 1 },
  created: false,
  warnings: [],
};

export const LIST_EXAMPLE = { items: [STORED_EXAMPLE], count: 1 };

/** A history item's template carries no revision of its own (the item has it). */
const { revision: _revision, ...STORED_CONTENT } = STORED_EXAMPLE;

export const HISTORY_EXAMPLE = {
  key: "order.paid.wechat.zh-CN",
  items: [
    { revision: 1, operation: "PUT", at: "2026-11-24T08:00:00.000Z", template: STORED_CONTENT },
    { revision: 13, operation: "PUT", at: "2026-11-24T09:00:00.000Z", template: { ...STORED_CONTENT, template_id: "TPL_ORDER_PAID_ZH_V2", updated_at: "2026-11-24T09:00:00.000Z" } },
    { revision: 14, operation: "PUT", at: "2026-11-24T09:30:00.000Z", template: { ...STORED_CONTENT, updated_at: "2026-11-24T09:30:00.000Z", rolled_back_to: 1 } },
  ],
};

const ORDER_ID = "O-20261124-0001";
const OPENID = "oExampleTraveller01";
const SEND_ID = sendIdFor({ event: "order.paid", order_id: ORDER_ID, ticket_id: null, channel: "wechat" });
const TITLE = "西湖夜游";

export const PREVIEW_EXAMPLE = {
  event: "order.paid",
  language: "zh-CN",
  order_id: ORDER_ID,
  openid: OPENID,
  data: { amount: 128.5, title: TITLE },
};

/** What the gateway answers for PREVIEW_EXAMPLE with the seeded templates. */
export const PREVIEW_RESPONSE_EXAMPLE = {
  payload: {
    touser: OPENID,
    template_id: "TPL_ORDER_PAID_ZH",
    url: `https://m.example.com/orders/${ORDER_ID}`,
    client_msg_id: SEND_ID,
    data: { thing1: { value: TITLE }, amount2: { value: "¥128.5" }, character_string3: { value: ORDER_ID } },
  },
  template: { event: "order.paid", channel: "wechat", language: "zh-CN", template_id: "TPL_ORDER_PAID_ZH", enabled: true, revision: 1 },
  send_id: SEND_ID,
  field_policy: "truncate",
  violations: [],
  would_send: true,
};

/** An order.paid event as a publisher posts it. */
export const EVENT_EXAMPLE = {
  id: "evt_7d1f4c2a-9b3e-4f60-8a51-2c9e0d4b6a17",
  event: "order.paid",
  occurred_at: "2026-11-24T08:15:00.000Z",
  order_id: ORDER_ID,
  ticket_id: null,
  recipient: { openid: OPENID, locale: "zh-CN" },
  data: { amount: 128.5, title: TITLE },
};

/** The schema with one example: @fastify/swagger shows it as the media type's `example`. */
export const withExample = <T extends object>(schema: T, example: unknown): T => ({ ...schema, examples: [example] });
