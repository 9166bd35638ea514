import { SMS_MAX_CHARS, SMS_PARAM_MAX_CHARS, type SmsPayload, type Template, type TemplateInput } from "@notify/contracts";
import { TemplateError } from "./errors.js";
import type { CompiledSms, CompiledTemplate, SmsRenderContext } from "./types.js";

type Render = (scope: Record<string, unknown>) => string;
type CompileExpression = (source: string, field: string) => Render;

/** A rendered SMS parameter that Tencent would refuse (too long): names `params[i]`. */
export class SmsParamError extends TemplateError {
  override name = "SmsParamError";
}

/** Copies the SMS/fallback fields of an admin's input onto the normalised template. */
export function normalizeSmsFields(input: TemplateInput, t: Template): void {
  if (input.params !== undefined) t.params = input.params;
  if (input.param_max_length !== undefined) t.param_max_length = input.param_max_length;
  if (input.fallback !== undefined) t.fallback = input.fallback;
}

/** Tencent counts characters, not bytes or UTF-16 units: one per code point. */
export function smsLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Checks which fields belong to which channel and, for `channel: sms`, compiles the
 * params. A WeChat template may not carry params; an SMS template carries no WeChat
 * keywords, link or mini program, and cannot itself fall back. Literal text longer than
 * the limit is refused at upsert; what the data adds is checked when rendered (preview,
 * dispatch).
 */
export function compileSmsPart(template: Template, compileExpression: CompileExpression): CompiledSms | undefined {
  if (template.channel !== "sms") {
    if (template.params !== undefined) throw new TemplateError("params: only SMS templates (channel sms) have params", "params");
    if (template.param_max_length !== undefined) throw new TemplateError("param_max_length: only SMS templates (channel sms) have params", "param_max_length");
    return undefined;
  }
  for (const f of ["url", "miniprogram", "fallback"] as const) {
    if (template[f] !== undefined) throw new TemplateError(`${f}: not allowed on an SMS template`, f);
  }
  if (Object.keys(template.data).length > 0) throw new TemplateError("data: an SMS template has ordered params, not WeChat keywords", "data");
  if (!Array.isArray(template.params)) throw new TemplateError("params: required for an SMS template (Tencent's TemplateParamSet, in order; [] for none)", "params");
  const maxChars = template.param_max_length ?? SMS_PARAM_MAX_CHARS;
  if (!Number.isInteger(maxChars) || maxChars < 1 || maxChars > SMS_MAX_CHARS) throw new TemplateError(`param_max_length: 1 to ${SMS_MAX_CHARS}`, "param_max_length");
  const params = template.params.map((source, i) => {
    const field = `params[${i}]`;
    const render = compileExpression(source, field);
    const literal = source.replace(/\{\{[\s\S]*?\}\}/g, "");
    if (smsLength(literal) > maxChars) throw new SmsParamError(`${field}: its fixed text alone is ${smsLength(literal)} characters, above the ${maxChars} Tencent accepts per parameter`, field);
    return { field, render };
  });
  return {
    maxChars,
    render(ctx) {
      const scope: Record<string, unknown> = { event: ctx.event, order_id: ctx.order_id, ticket_id: ctx.ticket_id, occurred_at: ctx.occurred_at, ...ctx.data };
      const out = params.map(({ field, render }) => {
        const v = render(scope);
        const n = smsLength(v);
        if (n > maxChars) throw new SmsParamError(`${field}: rendered to ${n} characters, above the ${maxChars} Tencent accepts per parameter`, field);
        return v;
      });
      return { phone: ctx.phone, template_id: template.template_id, params: out };
    },
  };
}

/** Adds the SMS part to a compiled template (the hook compileTemplate calls). */
export function withChannelParts(compiled: CompiledTemplate, compileExpression: CompileExpression): CompiledTemplate {
  const sms = compileSmsPart(compiled.template, compileExpression);
  return sms ? Object.assign(compiled, { sms }) : compiled;
}
