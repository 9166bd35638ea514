import t from "tap";
import { TemplateError, compileTemplate, normalizeTemplate } from "@notify/templates";
import { MAX_PATTERN_LENGTH } from "../src/safe-regex.js";

const tpl = (payload_schema: Record<string, unknown>) =>
  normalizeTemplate({ event: "order.paid", channel: "wechat", template_id: "TPL_PAID", payload_schema, data: { thing1: "{{title}}" } });

function refusal(schema: Record<string, unknown>): TemplateError {
  try {
    compileTemplate(tpl(schema));
  } catch (err) {
    if (err instanceof TemplateError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(schema)}`);
}

t.test("schema sandbox - keywords that reach outside one synchronous check are refused where they are", async (t) => {
  const cases: [Record<string, unknown>, string, string][] = [
    [{ $async: true, type: "object" }, "/$async", "$async"],
    [{ type: "object", properties: { a: { $async: true } } }, "/properties/a/$async", "$async"],
    [{ $id: "https://example.com/paid", type: "object" }, "/$id", "$id"],
    [{ type: "object", definitions: { x: { $id: "x", type: "string" } } }, "/definitions/x/$id", "$id"],
    [{ type: "object", properties: { a: { $ref: "https://evil.example/s.json" } } }, "/properties/a/$ref", "$ref"],
    [{ type: "object", properties: { a: { $ref: "other.json#/x" } } }, "/properties/a/$ref", "$ref"],
    [{ type: "object", properties: { a: { type: "number", maximum: { $data: "1/b" } } } }, "/properties/a/maximum/$data", "$data"],
    [{ $schema: "https://json-schema.org/draft/2020-12/schema", type: "object" }, "/$schema", "$schema"],
    [{ type: "object", requried: ["amount"] }, "/requried", "requried"],
    [{ type: "object", properties: { a: { type: "string", maxLenght: 3 } } }, "/properties/a/maxLenght", "maxLenght"],
    [{ type: "object", anyOf: [{ type: "object" }, { discriminator: { propertyName: "k" } }] }, "/anyOf/1/discriminator", "discriminator"],
  ];
  for (const [schema, path, keyword] of cases) {
    const e = refusal(schema);
    t.equal(e.field, "payload_schema", `${keyword}: the field`);
    t.same(e.details, { path, keyword }, `${keyword}: the JSON pointer and keyword`);
    t.match(e.message, keyword, `${keyword}: named in the message`);
  }
});

t.test("schema sandbox - unknown formats are refused, known ones enforced", async (t) => {
  t.match(refusal({ type: "object", properties: { mail: { type: "string", format: "emial" } } }).message, /unknown format "emial"/);
  const c = compileTemplate(tpl({ type: "object", properties: { mail: { type: "string", format: "email" } } }));
  t.equal(c.validate({ mail: "not-an-address" }).ok, false);
  t.equal(c.validate({ mail: "li@example.com" }).ok, true);
});

t.test("schema sandbox - the same $ref-using schema compiles in every revision (no shared ids)", async (t) => {
  const schema = { type: "object", definitions: { money: { type: "number", minimum: 0 } }, properties: { amount: { $ref: "#/definitions/money" } } };
  for (let revision = 1; revision <= 3; revision++) {
    const c = compileTemplate(tpl(schema), revision);
    t.equal(c.validate({ amount: -1 }).ok, false, `revision ${revision} enforces the ref`);
  }
});

t.test("schema sandbox - patterns run on RE2: no catastrophic backtracking, RE2 syntax only, bounded", async (t) => {
  const c = compileTemplate(tpl({ type: "object", properties: { title: { type: "string", pattern: "^(a+)+$" } } }));
  // 30 a's and a '!' take a backtracking engine minutes; RE2 answers in linear time.
  t.equal(c.validate({ title: `${"a".repeat(30)}!` }).ok, false);
  t.equal(c.validate({ title: "aaaa" }).ok, true);
  const props = compileTemplate(tpl({ type: "object", patternProperties: { "^(x+x+)+y$": { type: "number" } } }));
  t.equal(props.validate({ [`${"x".repeat(40)}y`]: "s" }).ok, false, "patternProperties keys go through RE2 too");

  t.same(refusal({ type: "object", properties: { a: { type: "string", pattern: "(a)\\1" } } }).details, { path: "/properties/a/pattern", keyword: "pattern" });
  t.match(refusal({ type: "object", properties: { a: { type: "string", pattern: "^(?=x)" } } }).message, /lookaround/);
  t.match(refusal({ type: "object", properties: { a: { type: "string", pattern: "x".repeat(MAX_PATTERN_LENGTH + 1) } } }).message, /at most 256/);
  t.match(refusal({ type: "object", properties: { a: { type: "string", pattern: "\\p{L}{1000}" } } }).message, /instructions/);
  const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}`, { type: "string", pattern: `^[a-z]{0,90}${i}$` }]));
  t.match(refusal({ type: "object", properties: many }).message, /in total/, "the whole schema's pattern budget is bounded");
  const phone = compileTemplate(tpl({ type: "object", properties: { phone: { type: "string", pattern: "^1\\d{10}$" }, code: { type: "string", pattern: "^(?<p>[A-Z]{2})-\\d+$" } } }));
  t.equal(phone.validate({ phone: "13800138000", code: "CN-12" }).ok, true, "ordinary patterns (named groups too) work");
  t.equal(phone.validate({ phone: "1380013800x", code: "CN-12" }).ok, false);
});

t.test("schema sandbox - uniqueItems only where Ajv checks it in linear time", async (t) => {
  t.same(refusal({ type: "object", properties: { tags: { type: "array", uniqueItems: true } } }).details, { path: "/properties/tags/uniqueItems", keyword: "uniqueItems" });
  t.same(refusal({ type: "array", items: { type: "object" }, uniqueItems: true }).details, { path: "/uniqueItems", keyword: "uniqueItems" });
  const c = compileTemplate(tpl({ type: "object", properties: { tags: { type: "array", items: { type: ["string", "number"] }, uniqueItems: true } } }));
  t.equal(c.validate({ tags: ["a", 1, "a"] }).ok, false);
  t.equal(c.validate({ tags: Array.from({ length: 12_000 }, (_, i) => i) }).ok, true);
});

t.test("schema sandbox - size and nesting are bounded", async (t) => {
  let deep: Record<string, unknown> = { type: "string" };
  for (let i = 0; i < 40; i++) deep = { type: "object", properties: { a: deep } };
  t.match(refusal(deep).message, /nested more than/);
  const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: 2100 }, (_, i) => [`p${i}`, { type: "string" }])) };
  t.match(refusal(wide).message, /larger than/);
});

t.test("schema sandbox - property names and data that look like keywords are left alone", async (t) => {
  const c = compileTemplate(
    tpl({
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: { $id: { type: "string" }, $async: { type: "boolean" } },
      enum: [{ $id: "x", $async: true }],
      default: { $data: "1/x" },
    }),
  );
  t.equal(c.validate({ $id: "x", $async: true }).ok, true);
});

t.test("schema sandbox - a validation that throws (stack exhausted by deep data) is a failed check", async (t) => {
  const c = compileTemplate(tpl({ definitions: { node: { type: "array", items: { $ref: "#/definitions/node" } } }, $ref: "#/definitions/node" }));
  let data: unknown = [];
  for (let i = 0; i < 200_000; i++) data = [data];
  const r = c.validate(data);
  t.equal(r.ok, false);
  t.match(r.errors[0]?.message, /could not be checked/);
});
