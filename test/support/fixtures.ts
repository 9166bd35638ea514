import { randomUUID } from "node:crypto";
import type { EventEnvelope, Template } from "@notify/contracts";
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

export function paidTemplate(over: Partial<Template> = {}): Template {
  return {
    ...normalizeTemplate({
      event: "order.paid",
      channel: "wechat",
      template_id: "TPL_PAID_ZH",
      language: "zh-CN",
      payload_schema: { type: "object", required: ["amount", "title"], properties: { amount: { type: "number" }, title: { type: "string" } } },
      data: { thing1: "{{title}}", amount2: "¥{{amount}}", character_string3: "{{order_id}}" },
      url: "https://m.example.com/orders/{{order_id}}",
    }),
    ...over,
  };
}
