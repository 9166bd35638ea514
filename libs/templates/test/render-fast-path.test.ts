import t from "tap";
import fc from "fast-check";
import Handlebars from "handlebars";
import { compileTemplate, normalizeTemplate } from "@notify/templates";

// What the slow path is: the same Handlebars settings as compile.ts.
const hb = Handlebars.create();
const HB_OPTIONS = { noEscape: true, knownHelpersOnly: true, strict: false } as const;

/** Both renderings, or the error each throws (Handlebars throws on values it cannot print). */
function renderBoth(expr: string, data: Record<string, unknown>): { ours: string; handlebars: string } {
  const attempt = (f: () => string) => {
    try {
      return f();
    } catch (err) {
      return `threw ${(err as Error).name}`;
    }
  };
  const tpl = compileTemplate(normalizeTemplate({ event: "order.paid", channel: "wechat", template_id: "T", data: { k: expr } }));
  const ours = attempt(() => (tpl.render({ openid: "o", data, event: "order.paid", order_id: "O-1", ticket_id: null }).data.k as { value: string }).value);
  const scope = { event: "order.paid", order_id: "O-1", ticket_id: null, occurred_at: undefined, ...data };
  return { ours, handlebars: attempt(() => (hb.compile(expr, HB_OPTIONS) as (c: unknown) => string)(scope)) };
}

t.test("templates - simple lookups render exactly as Handlebars does", async (t) => {
  const cases: [string, Record<string, unknown>][] = [
    ["{{title}}", { title: "West Lake <night> & \"tour\"" }],
    ["¥{{amount}} ({{ amount }})", { amount: 128.5 }],
    ["{{amount}}", { amount: -0 }],
    ["{{amount}}", { amount: Number.NaN }],
    ["{{flag}}/{{off}}", { flag: true, off: false }],
    ["{{a}}{{b}}", { a: 1, b: 0 }],
    ["{{a}}{{a}}", { a: false }],
    ["{{a}}{{b}}", { a: true, b: "x" }],
    ["{{a}}{{missing}}", { a: 2 }],
    ["[{{missing}}]", {}],
    ["[{{n}}]", { n: null }],
    ["{{a.b}}", { a: { b: "deep" } }],
    ["{{a.b}}", { a: null }],
    ["{{a.b}}", { a: "abc" }],
    ["{{a.length}}", { a: "abc" }],
    ["{{a.length}}", { a: [1, 2, 3] }],
    ["{{list}}", { list: [1, 2] }],
    ["{{obj}}", { obj: { x: 1 } }],
    ["{{toString}}", {}],
    ["{{hasOwnProperty}}", {}],
    ["{{a.toString}}", { a: {} }],
    ["{{order_id}}-{{event}}-{{ticket_id}}", {}],
    ["{{order_id}}", { order_id: "data wins" }],
    ["{{#if title}}{{title}}{{else}}none{{/if}}", { title: "" }],
    ["{{{title}}}", { title: "<b>" }],
    ["\\{{title}}", { title: "x" }],
    ["{{lookup a 'b'}}", { a: { b: 1 } }],
    ["{{this.title}}", { title: "t" }],
    ["a } b {{title}} { c }", { title: "t" }],
    ["{{toString}}", { toString: Object.create(null) }],
  ];
  for (const [expr, data] of cases) {
    const r = renderBoth(expr, data);
    t.equal(r.ours, r.handlebars, `${expr} with ${JSON.stringify(data)}`);
  }
});

t.test("templates - fast path matches Handlebars on generated data", async (t) => {
  // Prototype-chain names are refused at compile time (templates.test.ts); toString still
  // exercises the inherited-property bail-out.
  const key = fc.constantFrom("title", "amount", "a", "b", "order_id", "toString", "length");
  const leaf = fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined));
  const value = fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(key, leaf, { maxKeys: 3 }));
  const expr = fc
    .array(fc.oneof(fc.string({ maxLength: 5 }).filter((s) => !s.includes("{") && !s.includes("}") && !s.includes("\\")), key.map((k) => `{{${k}}}`), fc.tuple(key, key).map(([a, b]) => `{{${a}.${b}}}`)), { maxLength: 5 })
    .map((parts) => parts.join(""));
  fc.assert(
    fc.property(expr, fc.dictionary(key, value, { maxKeys: 4 }), (e, data) => {
      const r = renderBoth(e, data);
      return r.ours === r.handlebars;
    }),
    { numRuns: 5000 },
  );
  t.pass("5,000 generated expressions and data sets rendered identically");
});
