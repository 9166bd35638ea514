import { sendIdFor, type EventEnvelope, type SmsSendJob } from "@notify/contracts";
import type { CompiledTemplate, TemplateCache } from "@notify/templates";

/**
 * The SMS side of dispatching. An event's SMS template is sent directly on the `sms`
 * channel, unless the event's WeChat template names `fallback: sms`: then the SMS template
 * is only the fallback, rendered into the WeChat job and published by the sender if
 * WeChat refuses the traveller for good.
 */
export function smsIsFallbackOnly(templates: TemplateCache, env: EventEnvelope, channels: readonly string[]): boolean {
  if (!channels.includes("wechat")) return false;
  const wechat = templates.resolve(env.event, "wechat", env.recipient.locale);
  return !!wechat && wechat.template.enabled && wechat.template.fallback === "sms";
}

/** The rendered SMS for an envelope; throws SmsParamError (recorded as a render failure). */
export function renderSms(template: CompiledTemplate, env: EventEnvelope, phone: string) {
  return template.sms!.render({ phone, data: env.data, event: env.event, order_id: env.order_id, ticket_id: env.ticket_id ?? null, occurred_at: env.occurred_at });
}

/**
 * The fallback SMS job for a WeChat job, or why there is none (logged by the caller). Its
 * send_id is the business key's on the `sms` channel: one SMS per key, however often
 * WeChat refuses.
 */
export function prepareFallback(templates: TemplateCache, env: EventEnvelope, wechatSendId: string): { job: SmsSendJob } | { none: string } {
  const phone = env.recipient.phone;
  if (!phone) return { none: "no recipient.phone" };
  const t = templates.resolve(env.event, "sms", env.recipient.locale);
  if (!t || !t.template.enabled || !t.sms) return { none: "no enabled SMS template" };
  if (!t.validate(env.data).ok) return { none: "data does not satisfy the SMS template's payload_schema" };
  let payload;
  try {
    payload = renderSms(t, env, phone);
  } catch (err) {
    return { none: `SMS template does not render: ${(err as Error).message}` };
  }
  const job: SmsSendJob = {
    send_id: sendIdFor({ event: env.event, order_id: env.order_id, ticket_id: env.ticket_id ?? null, channel: "sms" }),
    event_id: env.id,
    event: env.event,
    channel: "sms",
    order_id: env.order_id,
    ticket_id: env.ticket_id ?? null,
    openid: env.recipient.openid,
    language: t.template.language,
    template_id: t.template.template_id,
    occurred_at: env.occurred_at,
    payload,
    fallback_of: wechatSendId,
  };
  return { job };
}
