import t from "tap";
import { TemplateError, compileTemplate, normalizeTemplate } from "@notify/templates";
import { MAX_EACH_ITERATIONS } from "../src/expression-sandbox.js";

const tpl = (expr: string) => normalizeTemplate({ event: "order.paid", channel: "wechat", template_id: "TPL_PAID", data: { thing1: expr } });
const render = (expr: string, data: Record<string, unknown>) => compileTemplate(tpl(expr)).render({ openid: "o", data }).data.thing1!.value;

function refusal(expr: string): TemplateError {
  try {
    compileTemplate(tpl(expr));
  } catch (err) {
    if (err instanceof TemplateError) return err;
    throw err;
  }
  throw new Error(`accepted: ${expr}`);
}

t.test("expression sandbox - partials, decorators, log and missing-helper hooks are refused with line and column", async (t) => {
  const cases: [string, RegExp, number, number][] = [
    ["{{> header}}", /partials/, 1, 1],
    ["Hi {{#> layout}}x{{/layout}}", /partials/, 1, 4],
    ["{{* decorate}}", /decorators/, 1, 1],
    ['{{#* inline "p"}}x{{/inline}}', /decorators/, 1, 1],
    ["line one\n  {{log title}}", /"log" is not allowed/, 2, 3],
    ["{{log}}", /"log"/, 1, 1],
    ["{{[log]}}", /"log"/, 1, 1],
    ["{{@log}}", /"log"/, 1, 1],
    ["{{helperMissing}}", /"helperMissing"/, 1, 1],
    ["{{blockHelperMissing title}}", /"blockHelperMissing"/, 1, 1],
    ["{{#blockHelperMissing title}}x{{/blockHelperMissing}}", /"blockHelperMissing"/, 1, 1],
    ["{{exec 'rm -rf /'}}", /unknown helper "exec"/, 1, 1],
    ["{{title (exec 1)}}", /unknown helper "title"/, 1, 1],
    ["{{#title}}x{{/title}}", /unknown helper "title"/, 1, 1],
    ["{{{{raw}}}}{{x}}{{{{/raw}}}}", /unknown helper "raw"/, 1, 1],
    ["{{a.b c}}", /cannot be called as a helper/, 1, 1],
    ["{{#if}}x{{/if}}", /exactly one argument/, 1, 1],
    ["{{if title}}", /block helper/, 1, 1],
    ["{{lookup this}}", /2 arguments/, 1, 1],
    ["{{#each}}x{{/each}}", /exactly one argument/, 1, 1],
  ];
  for (const [expr, message, line, column] of cases) {
    const e = refusal(expr);
    t.equal(e.field, "data.thing1", `${expr}: the field`);
    t.match(e.message, message, `${expr}: the reason`);
    t.same(e.details, { line, column }, `${expr}: where`);
  }
});

t.test("expression sandbox - the allowed helpers work as before", async (t) => {
  t.equal(render("{{#if paid}}paid{{else if due}}due{{else}}open{{/if}}", { paid: false, due: 1 }), "due");
  t.equal(render("{{#unless paid}}open{{/unless}}", { paid: false }), "open");
  t.equal(render("{{#each items as |it i|}}{{i}}={{it.name}};{{/each}}", { items: [{ name: "a" }, { name: "b" }] }), "0=a;1=b;");
  t.equal(render("{{#with seat}}{{row}}{{col}}{{/with}}", { seat: { row: 3, col: "F" } }), "3F");
  t.equal(render("{{lookup names lang}}", { names: { en: "Lake" }, lang: "en" }), "Lake");
  t.equal(render("{{#if (lookup flags 'vip')}}VIP {{/if}}{{title}}", { flags: { vip: true }, title: "T" }), "VIP T");
});

t.test("expression sandbox - each runs on a budget: huge arrays and nested loops fail the render, quickly", async (t) => {
  const nested = compileTemplate(tpl("{{#each a}}{{#each ../a}}{{#each ../../a}}x{{/each}}{{/each}}{{/each}}"));
  const a = Array.from({ length: 200 }, (_, i) => i);
  t.throws(() => nested.render({ openid: "o", data: { a } }), { name: "RenderBudgetError" });
  const wide = compileTemplate(tpl("{{#each a}}{{.}}{{/each}}"));
  t.throws(() => wide.render({ openid: "o", data: { a: Array.from({ length: MAX_EACH_ITERATIONS + 1 }, () => 1) } }), /iterations/);
  t.equal(wide.render({ openid: "o", data: { a: [1, 2, 3] } }).data.thing1!.value, "123", "the budget is per render");
  const loud = compileTemplate(tpl("{{#each a}}{{../s}}{{/each}}"));
  t.throws(() => loud.render({ openid: "o", data: { a: Array.from({ length: 100 }, () => 1), s: "y".repeat(10_000) } }), /characters/);
});

t.test("expression sandbox - nothing reaches the console", async (t) => {
  const writes: string[] = [];
  const orig = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug };
  for (const k of Object.keys(orig) as (keyof typeof orig)[]) console[k] = (...args: unknown[]) => void writes.push(args.join(" "));
  try {
    for (const expr of ["{{log title}}", '{{log "x" level="error"}}']) t.throws(() => compileTemplate(tpl(expr)), TemplateError);
    render("{{#each a}}{{this}}{{/each}}", { a: ['\n{"level":50,"msg":"forged"}'] });
  } finally {
    Object.assign(console, orig);
  }
  t.same(writes, []);
});
