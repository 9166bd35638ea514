import { randomUUID } from "node:crypto";
import { sendIdFor, type EventEnvelope, type SendJob, type Template, type TemplateInput } from "@notify/contracts";
import { normalizeTemplate } from "@notify/templates";

let n = 0;

/** A realistic order.paid envelope; override any field. */
export function paidEvent(over: Partial<EventEnvelope> = {}): EventEnvelope {
  n++;
  return {
    id: `evt_${randomUUID()}`,
    event: "order.paid",
    occurred_at: new Date().toISOString(),
    order_id: `O-${process.pid}-${n}`,
    ticket_id: null,
    recipient: { openid: `oTest${n}`, locale: "zh-CN" },
    data: { amount: 128.5, title: "West Lake night tour" },
    ...over,
  };
}

/** The example order.paid template as an admin posts it (`POST /notifications/templates`); override any field. */
export function paidTemplateBody(over: Record<string, unknown> = {}): TemplateInput & Record<string, unknown> {
  return {
    event: "order.paid",
    channel: "wechat",
    template_id: "TPL_PAID_V1",
    language: "zh-CN",
    payload_schema: { type: "object", required: ["amount", "title"], properties: { amount: { type: "number" }, title: { type: "string" } } },
    data: { thing1: "{{title}}", amount2: { value: "¥{{amount}}", color: "#173177" } },
    url: "https://m.example.com/orders/{{order_id}}",
    ...over,
  };
}

/** An order.paid template as stored in `notification_templates` (normalized); override any field. */
export function paidTemplate(over: Partial<Template> = {}): Template {
  return {
    ...normalizeTemplate(paidTemplateBody({ template_id: "TPL_PAID_ZH", data: { thing1: "{{title}}", amount2: "¥{{amount}}", character_string3: "{{order_id}}" } })),
    ...over,
  };
}

/** A rendered WeChat job for `order.paid` of `order_id`, as the dispatcher publishes it (DLQ tests build these by hand). */
export function paidJob(order_id: string, event_id = `evt_${order_id}`): SendJob {
  const send_id = sendIdFor({ event: "order.paid", order_id, ticket_id: null, channel: "wechat" });
  return {
    send_id,
    event_id,
    event: "order.paid",
    channel: "wechat",
    order_id,
    ticket_id: null,
    openid: "oTraveller1",
    language: "zh-CN",
    template_id: "TPL_PAID_V1",
    occurred_at: "2026-11-24T08:00:00Z",
    payload: { touser: "oTraveller1", template_id: "TPL_PAID_V1", client_msg_id: send_id, data: { thing1: { value: "West Lake" } } },
  };
}
