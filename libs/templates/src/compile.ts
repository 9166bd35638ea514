import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import Handlebars from "handlebars";
import {
  DEFAULT_LANGUAGE,
  type Template,
  type TemplateInput,
  type WeChatTemplatePayload,
} from "@notify/contracts";
import { TemplateError } from "./errors.js";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

// One ajv for all templates: compiling is the expensive part and happens once per revision.
const ajv = addFormats(new Ajv({ allErrors: true, strict: false, allowUnionTypes: true }));
// An isolated Handlebars environment: no helper registered elsewhere can leak in.
const hb = Handlebars.create();
/** Only built-in helpers (if, each, with, unless, lookup); no HTML escaping — WeChat is not HTML. */
const HB_OPTIONS = { noEscape: true, knownHelpersOnly: true, strict: false } as const;

type Render = (ctx: Record<string, unknown>) => string;

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
}

/** Applies the contract's defaults to an admin's input. */
export function normalizeTemplate(input: TemplateInput, now = new Date()): Template {
  const t: Template = {
    event: input.event,
    channel: input.channel,
    language: input.language ?? DEFAULT_LANGUAGE,
    template_id: input.template_id,
    enabled: input.enabled ?? true,
    payload_schema: input.payload_schema ?? { type: "object" },
    data: input.data ?? {},
    updated_at: now.toISOString(),
  };
  if (input.url !== undefined) t.url = input.url;
  if (input.miniprogram !== undefined) t.miniprogram = input.miniprogram;
  return t;
}

function compileExpression(source: string, field: string): Render {
  try {
    // parse + precompile surface syntax errors and unknown helpers now, not at send time.
    hb.precompile(source, HB_OPTIONS);
  } catch (err) {
    throw new TemplateError(`${field}: ${(err as Error).message.split("\n")[0]}`, field, { cause: err });
  }
  return hb.compile(source, HB_OPTIONS) as Render;
}

function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new TemplateError(`payload_schema: ${(err as Error).message}`, "payload_schema", { cause: err });
  }
}

/** Compiles a template; throws TemplateError naming the part that does not compile. */
export function compileTemplate(template: Template, revision = 0): CompiledTemplate {
  const validateFn = compileSchema(template.payload_schema);
  const fields = Object.entries(template.data).map(([key, f]) => {
    const value = typeof f === "string" ? f : f.value;
    const color = typeof f === "string" ? undefined : f.color;
    return { key, color, render: compileExpression(value, `data.${key}`) };
  });
  const url = template.url !== undefined ? compileExpression(template.url, "url") : undefined;
  const pagepath = template.miniprogram?.pagepath !== undefined ? compileExpression(template.miniprogram.pagepath, "miniprogram.pagepath") : undefined;

  return {
    template,
    revision,
    validate(data) {
      if (validateFn(data)) return { ok: true, errors: [], missing: [] };
      const errors = validateFn.errors ?? [];
      const missing = errors.filter((e) => e.keyword === "required").map((e) => String((e.params as { missingProperty: string }).missingProperty));
      return { ok: false, errors, missing };
    },
    render(ctx) {
      // Business metadata is visible to expressions; the event's own data wins on a clash.
      const scope: Record<string, unknown> = {
        event: ctx.event,
        order_id: ctx.order_id,
        ticket_id: ctx.ticket_id,
        occurred_at: ctx.occurred_at,
        ...ctx.data,
      };
      const data: WeChatTemplatePayload["data"] = {};
      for (const f of fields) data[f.key] = f.color ? { value: f.render(scope), color: f.color } : { value: f.render(scope) };
      const payload: WeChatTemplatePayload = { touser: ctx.openid, template_id: template.template_id, data };
      if (url) payload.url = url(scope);
      if (template.miniprogram) {
        payload.miniprogram = { appid: template.miniprogram.appid, ...(pagepath ? { pagepath: pagepath(scope) } : {}) };
      }
      if (ctx.send_id) payload.client_msg_id = ctx.send_id;
      return payload;
    },
  };
}
