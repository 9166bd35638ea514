import type { ErrorObject } from "ajv";
import type { SmsPayload, Template, WeChatTemplatePayload } from "@notify/contracts";

// The shapes compile.ts (WeChat) and sms.ts (SMS) share, in a module of their own so the
// two import each other's types through it rather than each other (no import cycle).

export interface ValidationResult {
  ok: boolean;
  errors: ErrorObject[];
  /** Fields named by `required` errors, e.g. ["amount"]. */
  missing: string[];
}

export interface RenderContext {
  openid: string;
  send_id?: string;
  data: Record<string, unknown>;
  event?: string;
  order_id?: string;
  ticket_id?: string | null;
  occurred_at?: string;
}

/** A template ready to validate and render: schema and expressions compiled once. */
export interface CompiledTemplate {
  readonly template: Template;
  readonly revision: number;
  validate(data: unknown): ValidationResult;
  render(ctx: RenderContext): WeChatTemplatePayload;
  /** `channel: sms` templates: renders Tencent's TemplateParamSet (see sms.ts). */
  readonly sms?: CompiledSms;
}

export interface SmsRenderContext extends Omit<RenderContext, "openid"> {
  /** E.164. */
  phone: string;
}

/** The SMS side of a compiled `channel: sms` template. */
export interface CompiledSms {
  readonly maxChars: number;
  /** Renders the ordered params; throws SmsParamError naming the parameter that is too long. */
  render(ctx: SmsRenderContext): SmsPayload;
}
