import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { FailReason, SkipReason, languageCandidates, sendIdFor, type WeChatTemplatePayload } from "@notify/contracts";
import { DEFAULT_FIELD_POLICY, SmsParamError, enforceFieldRules, type CompiledSms, type SmsRenderContext } from "@notify/templates";
import { notFound, unprocessable } from "../errors.js";
import { errors } from "../schemas/common.js";
import { PreviewBody, PreviewResponse } from "../schemas/preview.js";
import { PREVIEW_EXAMPLE, PREVIEW_RESPONSE_EXAMPLE, withExample } from "../schemas/examples.js";

/** The exact payload the dispatcher would send, rendered by the dispatcher's own code. */
const previewRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/notifications/preview",
    {
      schema: {
        tags: ["Notifications"],
        summary: "Render notification payload for QA",
        description:
          "Resolves the template like the dispatcher (locale exact → language → zh-CN), validates `data` against its " +
          "payload_schema, renders the WeChat payload and applies WeChat's keyword rules under the template's field_policy: " +
          "`payload` is what WeChat would receive, `violations` lists each broken rule with the policy's action. On channel sms, `payload` is " +
          "Tencent's number, template id and ordered params. 404 when no template matches; 422 with the ajv errors when `data` misses fields, " +
          "or naming `params[i]` when an SMS parameter renders longer than Tencent accepts, or when the template cannot render this data " +
          "(the dispatcher records that `failed`, reason `render`).",
        body: withExample(PreviewBody, PREVIEW_EXAMPLE),
        response: { 200: withExample(PreviewResponse, PREVIEW_RESPONSE_EXAMPLE), ...errors(400, 404, 409, 422) },
      },
    },
    async (request) => {
      const { event, data, language, openid = "PREVIEW_OPENID", order_id, ticket_id } = request.body;
      const channel = request.body.channel ?? "wechat";
      const compiled = await app.notify.templates.resolve(event, channel, language);
      if (!compiled) {
        throw notFound(`no template for ${event} on ${channel} in ${languageCandidates(language).join(", ")}`);
      }
      const v = compiled.validate(data);
      if (!v.ok) {
        throw unprocessable("data does not satisfy the template's payload_schema", { missing: v.missing, errors: v.errors });
      }
      const sendId = order_id ? sendIdFor({ event, order_id, ticket_id: ticket_id ?? null, channel }) : undefined;
      const t = compiled.template;
      if (compiled.sms) {
        const payload = renderSms(compiled.sms, { phone: request.body.phone ?? PREVIEW_PHONE, data, event, ...(order_id ? { order_id, ticket_id: ticket_id ?? null } : {}) });
        return {
          payload,
          template: { event: t.event, channel: t.channel, language: t.language, template_id: t.template_id, enabled: t.enabled, revision: compiled.revision },
          ...(sendId ? { send_id: sendId } : {}),
          field_policy: t.field_policy ?? DEFAULT_FIELD_POLICY,
          violations: [],
          would_send: t.enabled,
          ...(t.enabled ? {} : { would_record: `skipped: ${SkipReason.disabled}` }),
        };
      }
      let rendered: WeChatTemplatePayload;
      try {
        rendered = compiled.render({
          openid,
          data,
          event,
          ...(sendId ? { send_id: sendId } : {}),
          ...(order_id ? { order_id, ticket_id: ticket_id ?? null } : {}),
        });
      } catch (err) {
        // Rendering touches nothing but the template and this data: whatever fails is theirs.
        // The dispatcher records the same event `failed` with reason `render`.
        throw unprocessable(`template could not be rendered: ${(err as Error).message}`, { reason: "render" });
      }
      // The dispatcher's own step after rendering: WeChat's keyword rules under the template's policy.
      const policy = t.field_policy ?? DEFAULT_FIELD_POLICY;
      const checked = enforceFieldRules(rendered, policy);
      const wouldRecord = !t.enabled ? `skipped: ${SkipReason.disabled}` : !checked.ok ? `failed: ${FailReason.fieldRule}` : undefined;
      return {
        payload: checked.payload,
        template: { event: t.event, channel: t.channel, language: t.language, template_id: t.template_id, enabled: t.enabled, revision: compiled.revision },
        ...(sendId ? { send_id: sendId } : {}),
        field_policy: policy,
        violations: checked.findings,
        would_send: wouldRecord === undefined,
        ...(wouldRecord ? { would_record: wouldRecord } : {}),
      };
    },
  );
};

const PREVIEW_PHONE = "+8613800000000";

/** A parameter Tencent would refuse is a 422 naming it, as the dispatcher would record it failed. */
function renderSms(sms: CompiledSms, ctx: SmsRenderContext) {
  try {
    return sms.render(ctx);
  } catch (err) {
    if (err instanceof SmsParamError) throw unprocessable(err.message, { field: err.field });
    throw unprocessable(`template could not be rendered: ${(err as Error).message}`, { reason: "render" });
  }
}

export default previewRoutes;
