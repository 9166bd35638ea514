import { DEFAULT_LANGUAGE, type Template, type TemplateInput, type WeChatTemplatePayload } from "@notify/contracts";
import { TemplateError } from "./errors.js";
import { compilePayloadSchema } from "./schema.js";
import { normalizeSmsFields, withChannelParts } from "./sms.js";
import type { CompiledTemplate, RenderContext, ValidationResult } from "./types.js";
import { HB_OPTIONS, checkExpression, hb, resetRenderBudget } from "./expression-sandbox.js";

type Render = (ctx: Record<string, unknown>) => string;

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
  if (input.field_policy !== undefined) t.field_policy = input.field_policy;
  normalizeSmsFields(input, t);
  return t;
}

function compileExpression(source: string, field: string): Render {
  // Syntax errors, then the helper allow-list (with line and column), now rather than at send time.
  const ast = handlebarsStep(field, () => hb.parse(source));
  checkExpression(ast, field);
  handlebarsStep(field, () => hb.precompile(ast, HB_OPTIONS));
  const reached = prototypeAccess(ast);
  if (reached) throw new TemplateError(`${field}: "${reached}" reaches the prototype chain and is not allowed in an expression`, field);
  const compiled = hb.compile(source, HB_OPTIONS) as Render;
  // Each expression renders on its own `each` budget (renders are synchronous).
  const slow: Render = (ctx) => {
    resetRenderBudget();
    return compiled(ctx);
  };
  const fast = compileSimple(source);
  if (!fast) return slow;
  return (ctx) => {
    const out = fast(ctx);
    return out === BAIL ? slow(ctx) : out;
  };
}

function handlebarsStep<T>(field: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    const message = (err as Error).message;
    const line = /on line (\d+)/.exec(message)?.[1];
    throw new TemplateError(`${field}: ${message.split("\n")[0]}`, field, { cause: err, ...(line ? { details: { line: Number(line) } } : {}) });
  }
}

/**
 * Names that lead from a value to its prototype or to Function. Handlebars' runtime already
 * refuses to resolve them (they would render empty); an expression that names one is an
 * injection attempt or a mistake, so it is refused when the template is stored, with the
 * field named. Lookups computed from data at render time stay covered by the runtime check.
 */
const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype", "__defineGetter__", "__defineSetter__", "__lookupGetter__", "__lookupSetter__"]);

/** The first prototype name a path segment or a string literal (a lookup key) uses, or null. */
function prototypeAccess(node: unknown): string | null {
  if (Array.isArray(node)) {
    for (const n of node) {
      const hit = prototypeAccess(n);
      if (hit) return hit;
    }
    return null;
  }
  if (!node || typeof node !== "object") return null;
  const n = node as { type?: string; parts?: unknown; value?: unknown };
  if (n.type === "PathExpression" && Array.isArray(n.parts)) {
    const hit = n.parts.find((p) => typeof p === "string" && PROTOTYPE_NAMES.has(p));
    if (hit) return hit as string;
  }
  if (n.type === "StringLiteral" && typeof n.value === "string" && PROTOTYPE_NAMES.has(n.value)) return n.value;
  for (const [k, v] of Object.entries(node)) {
    if (k === "loc" || !v || typeof v !== "object") continue;
    const hit = prototypeAccess(v);
    if (hit) return hit;
  }
  return null;
}

/** A fast renderer met a value only Handlebars knows how to print: render with Handlebars. */
const BAIL: unique symbol = Symbol("bail");
const SIMPLE_TOKEN = /\{\{\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s*\}\}/g;
/** Words Handlebars reads as helpers or literals, never as a property lookup. */
const NOT_A_PATH = new Set(["this", "true", "false", "null", "undefined", "else", "if", "unless", "each", "with", "lookup", "log", "helperMissing", "blockHelperMissing"]);

/**
 * Most expressions are text with `{{name}}` / `{{a.b}}` lookups. Those render here
 * without the Handlebars runtime (which builds a container, merges helpers and checks
 * prototype access on every call): own properties of plain data, printed as Handlebars
 * prints strings, numbers, booleans and null/undefined. Anything else — other syntax at
 * compile time, other values (objects, arrays, functions, inherited properties) at render
 * time — goes to Handlebars, so the output is always what Handlebars would produce.
 */
function compileSimple(source: string): ((ctx: Record<string, unknown>) => string | typeof BAIL) | null {
  const texts: string[] = [];
  const paths: string[][] = [];
  let last = 0;
  for (const m of source.matchAll(SIMPLE_TOKEN)) {
    const path = m[1]!.split(".");
    if (path.some((seg) => NOT_A_PATH.has(seg))) return null;
    // {{{raw}}} and stray braces next to a lookup: Handlebars parses those.
    if (source[m.index - 1] === "{" || source[m.index + m[0].length] === "}") return null;
    texts.push(source.slice(last, m.index));
    paths.push(path);
    last = m.index + m[0].length;
  }
  texts.push(source.slice(last));
  // Any other mustache, an escape or a block is Handlebars' business.
  if (texts.some((t) => t.includes("{{") || t.includes("\\"))) return null;
  return (ctx) => {
    // Handlebars' compiled code is `part + part + …` over the non-empty text parts and
    // `(value ?? "")`, then `"" + result`: JavaScript's `+`, so `{{a}}{{b}}` with numbers or
    // booleans adds them (1 + 0 → "1"). Reproduced exactly, quirks included.
    let acc: unknown = undefined;
    let first = true;
    const add = (x: unknown) => {
      acc = first ? x : plus(acc, x);
      first = false;
    };
    if (texts[0]) add(texts[0]);
    for (let i = 0; i < paths.length; i++) {
      let v: unknown = ctx;
      for (const seg of paths[i]!) {
        if (v === null || v === undefined) break;
        if (typeof v !== "object" || Array.isArray(v)) return BAIL;
        if (!Object.hasOwn(v, seg)) {
          if (seg in v) return BAIL; // inherited: Handlebars' prototype-access rules decide
          v = undefined;
          break;
        }
        v = (v as Record<string, unknown>)[seg];
      }
      if (v === null || v === undefined) add("");
      else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") add(v);
      else return BAIL;
      if (texts[i + 1]) add(texts[i + 1]);
    }
    return first ? "" : `${acc as string}`;
  };
}

/** JavaScript's `+` on strings, numbers and booleans, as Handlebars' generated code applies it. */
function plus(a: unknown, b: unknown): unknown {
  return (a as number) + (b as number);
}

/**
 * Compiles a template; throws TemplateError naming the part that does not compile. A value
 * written around the API can be any JSON: its shape is checked first, and anything else
 * that throws while compiling it is a TemplateError too, never a crash of the caller.
 */
export function compileTemplate(template: Template, revision = 0): CompiledTemplate {
  checkShape(template);
  try {
    return compileChecked(template, revision);
  } catch (err) {
    if (err instanceof TemplateError) throw err;
    throw new TemplateError(`template: does not compile: ${(err as Error).message}`, "template", { cause: err });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkShape(t: unknown): void {
  if (!isObject(t)) throw new TemplateError("template: is not a JSON object", "template");
  const ps = t.payload_schema;
  if (!isObject(ps) && typeof ps !== "boolean") throw new TemplateError("payload_schema: must be a JSON Schema object", "payload_schema");
  if (!isObject(t.data)) throw new TemplateError("data: must be an object of keyword → expression", "data");
  for (const [k, f] of Object.entries(t.data)) {
    if (typeof f !== "string" && !(isObject(f) && typeof f.value === "string")) throw new TemplateError(`data.${k}: must be an expression or { value, color }`, `data.${k}`);
  }
  if (t.url !== undefined && typeof t.url !== "string") throw new TemplateError("url: must be a string", "url");
  if (t.miniprogram !== undefined && !(isObject(t.miniprogram) && (t.miniprogram.pagepath === undefined || typeof t.miniprogram.pagepath === "string"))) {
    throw new TemplateError("miniprogram: must be { appid, pagepath? }", "miniprogram");
  }
}

function compileChecked(template: Template, revision: number): CompiledTemplate {
  const validateFn = compilePayloadSchema(template.payload_schema);
  const fields = Object.entries(template.data).map(([key, f]) => {
    const value = typeof f === "string" ? f : f.value;
    const color = typeof f === "string" ? undefined : f.color;
    return { key, color, render: compileExpression(value, `data.${key}`) };
  });
  const url = template.url !== undefined ? compileExpression(template.url, "url") : undefined;
  const pagepath = template.miniprogram?.pagepath !== undefined ? compileExpression(template.miniprogram.pagepath, "miniprogram.pagepath") : undefined;

  return withChannelParts({
    template,
    revision,
    validate(data) {
      const { ok, errors } = validateFn(data);
      if (ok) return { ok: true, errors: [], missing: [] };
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
  }, compileExpression);
}
