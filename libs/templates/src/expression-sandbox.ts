import Handlebars from "handlebars";
import { TemplateError } from "./errors.js";

/** Block helpers a template may use, each with exactly one argument. */
const BLOCK_HELPERS: ReadonlySet<string> = new Set(["if", "unless", "each", "with"]);
/** Inline helpers, with their argument count. */
const INLINE_HELPERS: ReadonlyMap<string, number> = new Map([["lookup", 2]]);
/** Handlebars built-ins that are refused by name (they print, or stand in for missing helpers). */
const REFUSED_BUILTINS: ReadonlySet<string> = new Set(["log", "helperMissing", "blockHelperMissing"]);
export const ALLOWED_HELPERS = [...BLOCK_HELPERS, ...INLINE_HELPERS.keys()] as const;

/** Most `each` iterations one expression may run in one render, summed over its loops. */
export const MAX_EACH_ITERATIONS = 1000;
/** Most characters `each` bodies may produce in one expression's render (a WeChat field holds ~20). */
export const MAX_EACH_OUTPUT = 64 * 1024;

/**
 * The Handlebars environment templates compile and render in: a fresh one (no helper
 * registered elsewhere can leak in), without `log` (it writes data to the console past the
 * logger's redaction) or the missing-helper hooks, and with an `each` that runs on a budget.
 */
export const hb = Handlebars.create();
for (const name of REFUSED_BUILTINS) hb.unregisterHelper(name);
hb.log = () => undefined;

/** `{ log: false, … }`: the compiler then treats these names as unknown, never as helper calls. */
const knownHelpers = Object.fromEntries([...REFUSED_BUILTINS].map((n) => [n, false]));
/** No HTML escaping (WeChat is not HTML); only the helpers above. */
export const HB_OPTIONS = { noEscape: true, knownHelpersOnly: true, strict: false, knownHelpers } as const;

let iterationsLeft = MAX_EACH_ITERATIONS;
let outputLeft = MAX_EACH_OUTPUT;

/** Raised when a render exceeds its budget: the template or the data is too large to render. */
export class RenderBudgetError extends Error {
  override name = "RenderBudgetError";
}

const builtinEach = hb.helpers.each as (this: unknown, context: unknown, options: Handlebars.HelperOptions) => string;
hb.registerHelper("each", function (this: unknown, context: unknown, options: Handlebars.HelperOptions) {
  const n = Array.isArray(context) ? context.length : context && typeof context === "object" ? Object.keys(context).length : 0;
  iterationsLeft -= n;
  if (iterationsLeft < 0) throw new RenderBudgetError(`#each: more than ${MAX_EACH_ITERATIONS} iterations in one render`);
  const fn = options.fn;
  const counted = Object.assign(
    (ctx: unknown, o?: Handlebars.RuntimeOptions) => {
      const out = fn(ctx, o);
      outputLeft -= out.length;
      if (outputLeft < 0) throw new RenderBudgetError(`#each: more than ${MAX_EACH_OUTPUT} characters in one render`);
      return out;
    },
    fn,
  );
  return builtinEach.call(this, context, { ...options, fn: counted });
});

/** Starts one expression render's budget (renders are synchronous: one at a time). */
export function resetRenderBudget(): void {
  iterationsLeft = MAX_EACH_ITERATIONS;
  outputLeft = MAX_EACH_OUTPUT;
}

type Node = hbs.AST.Node & { loc?: hbs.AST.SourceLocation };

/** Handlebars' own rule for a name that may be a helper: one segment, not `this`/`..`/`./`. */
function helperName(path: hbs.AST.Expression): string | null {
  if (path.type !== "PathExpression") return null;
  const p = path as hbs.AST.PathExpression;
  return p.parts.length === 1 && !/^\.|this\b/.test(p.original) && !p.depth ? String(p.parts[0]) : null;
}

/**
 * The allow-list over the parsed template: only the helpers above, used as intended;
 * no partials, decorators, `log`, missing-helper hooks or sections over data.
 * Throws TemplateError with the line and column (1-based) of the offending node.
 */
export function checkExpression(ast: hbs.AST.Program, field: string): void {
  const fail = (node: Node, what: string): never => {
    const line = node.loc?.start.line ?? 1;
    const column = (node.loc?.start.column ?? 0) + 1;
    throw new TemplateError(`${field}: line ${line}, column ${column}: ${what}`, field, { details: { line, column } });
  };
  const allowed = `allowed: ${ALLOWED_HELPERS.join(", ")}`;
  const call = (node: Node & { path: hbs.AST.Expression; params: hbs.AST.Expression[]; hash?: hbs.AST.Hash }, kind: "block" | "inline" | "sub") => {
    const name = helperName(node.path);
    const isCall = kind === "block" || kind === "sub" || node.params.length > 0 || node.hash !== undefined;
    if (name !== null && REFUSED_BUILTINS.has(name)) fail(node, `"${name}" is not allowed (${allowed})`);
    if (isCall) {
      if (name === null) fail(node, `"${(node.path as hbs.AST.PathExpression).original ?? node.path.type}" cannot be called as a helper (${allowed})`);
      if (kind === "block") {
        if (!BLOCK_HELPERS.has(name!)) fail(node, INLINE_HELPERS.has(name!) ? `"${name}" is not a block helper` : `unknown helper "${name}" (${allowed}; a block over data needs #with or #each)`);
        if (node.params.length !== 1) fail(node, `#${name} takes exactly one argument`);
      } else {
        const arity = INLINE_HELPERS.get(name!);
        if (arity === undefined) fail(node, BLOCK_HELPERS.has(name!) ? `"${name}" is a block helper: use {{#${name} …}}…{{/${name}}}` : `unknown helper "${name}" (${allowed})`);
        if (node.params.length !== arity) fail(node, `${name} takes ${arity} arguments`);
      }
    } else if (name !== null && (BLOCK_HELPERS.has(name) || INLINE_HELPERS.has(name))) {
      fail(node, `"${name}" is a helper and needs arguments`);
    }
    for (const p of node.params) walk(p);
    for (const pair of node.hash?.pairs ?? []) walk(pair.value);
  };
  const walk = (node: Node | null | undefined): void => {
    if (!node) return;
    switch (node.type) {
      case "Program":
        for (const s of (node as hbs.AST.Program).body) walk(s);
        return;
      case "MustacheStatement":
        return call(node as hbs.AST.MustacheStatement, "inline");
      case "SubExpression":
        return call(node as hbs.AST.SubExpression, "sub");
      case "BlockStatement": {
        const b = node as hbs.AST.BlockStatement;
        call(b, "block");
        walk(b.program);
        walk(b.inverse);
        return;
      }
      case "PartialStatement":
      case "PartialBlockStatement":
        return fail(node, "partials ({{> name}}) are not allowed: a template is self-contained");
      case "Decorator":
      case "DecoratorBlock":
        return fail(node, "decorators ({{* name}}) are not allowed");
      default:
        return; // content, comments, paths and literals
    }
  };
  walk(ast as Node);
}
