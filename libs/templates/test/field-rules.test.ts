import t, { type Test } from "tap";
import fc from "fast-check";
import type { WeChatTemplatePayload } from "@notify/contracts";
import { checkField, checkTemplateFields, enforceFieldRules, repair, ruleOf } from "@notify/templates";

const cps = (s: string) => [...s].length;
/** A value in an assertion name: `#` would start a TAP directive, U+2028 a new line. */
const shown = (v: string) => JSON.stringify(v).slice(0, 40).replace(/[#\u0085\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
const payload = (data: Record<string, string | { value: string; color?: string }>): WeChatTemplatePayload => ({
  touser: "oX",
  template_id: "TPL",
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, typeof v === "string" ? { value: v } : v])),
});

t.test("field rules - the prefix decides the rule", async (t) => {
  t.equal(ruleOf("thing1"), "thing");
  t.equal(ruleOf("thing"), "thing");
  t.equal(ruleOf("character_string12"), "character_string");
  t.equal(ruleOf("car_number3"), "car_number");
  t.equal(ruleOf("phone_number2"), "phone_number");
  t.equal(ruleOf("const9"), "const");
  t.equal(ruleOf("keyword1"), "keyword", "legacy keywords follow the general 20-character rule");
  t.equal(ruleOf("things1"), "keyword", "a longer word is not a prefix match");
  t.equal(ruleOf("__proto__"), "keyword");
});

t.test("field rules - each type: a valid value, one over the limit, a line break, a bad format", async (t) => {
  const cases: Array<[key: string, valid: string[], invalid: Array<[string, string]>]> = [
    ["thing1", ["West Lake night tour", "西湖夜游·20个字以内的活动名称二十", "x"], [["a".repeat(21), "too_long"], ["a\nb", "line_break"], ["", "empty"]]],
    ["character_string2", ["O-1001", "A".repeat(32), "ab_12#!"], [["A".repeat(33), "too_long"], ["订单1001", "format"], ["a\r\nb", "line_break"]]],
    ["phrase3", ["配送中", "已取消"], [["配送中请稍候", "too_long"], ["paid", "format"], ["已 付", "format"]]],
    ["name4", ["张三", "欧阳娜娜", "John Smith", "Mary-Jane O'Neil"], [["张".repeat(11), "format"], ["A".repeat(21), "too_long"], ["Bob42", "format"]]],
    ["amount5", ["¥128.50", "128", "$9.9", "¥1000000000", "100元", "￥0.01"], [["¥12345678901", "format"], ["CNY 128", "format"], ["¥1.234", "format"], ["-5", "format"]]],
    ["number6", ["42", "3.14", "-7", "9".repeat(32)], [["9".repeat(33), "too_long"], ["1e5", "format"], ["12a", "format"]]],
    ["time7", ["15:01", "2019年10月1日 15:01", "2026-11-24 08:00", "2026/11/24 08:00:59", "15:01~16:30", "2019年10月1日 15:01~2019年10月2日 09:00"], [["25:00", "format"], ["2026-11-24", "format"], ["2026-11-24T08:00:00Z", "format"], ["2026-02-30 10:00", "format"]]],
    ["date8", ["2019年10月1日", "2026-11-24", "2026.11.24 08:00", "2026-11-24~2026-11-30", "2024-02-29"], [["2023-02-29", "format"], ["15:01", "format"], ["2026-13-01", "format"], ["2026-11-24~2026-11-25~2026-11-26", "format"]]],
    ["car_number9", ["粤A8Z888挂", "京A12345", "AB12345"], [["粤A8Z888挂X", "too_long"], ["A粤8888", "format"]]],
    ["phone_number10", ["+86-0766-66888866", "13800138000", "(010) 6552"], [["1".repeat(18), "too_long"], ["call me", "format"]]],
    ["letter11", ["ABC", "z".repeat(32)], [["AB1", "format"], ["z".repeat(33), "too_long"]]],
    ["symbol12", ["!", "#$%", "→"], [["!!!!!!", "too_long"], ["a!", "format"]]],
    ["const13", ["已支付"], [["x".repeat(21), "too_long"], ["a\nb", "line_break"]]],
    ["keyword1", ["", "x".repeat(20)], [["x".repeat(21), "too_long"], ["a\u2028b", "line_break"]]],
  ];
  for (const [key, valid, invalid] of cases) {
    for (const v of valid) t.equal(checkField(key, v), null, `${key}: ${shown(v)} is valid`);
    for (const [v, problem] of invalid) {
      const found = checkField(key, v);
      t.equal(found?.problem, problem, `${key}: ${shown(v)} → ${problem}`);
      t.equal(found?.field, key);
      t.match(found?.message ?? "", new RegExp(`^${key}: `), "the message names the field");
    }
  }
});

t.test("field rules - truncate vs reject on a rendered payload", async (t) => {
  const long = "西湖夜游".repeat(10); // 40 characters
  const p = payload({ thing1: long, thing2: "line one\nline two", amount3: "CNY 128", character_string4: "x".repeat(40), phrase5: "配送中" });

  const tr = enforceFieldRules(p, "truncate");
  t.equal(tr.payload.data.thing1!.value, `${[...long].slice(0, 19).join("")}…`, "thing cut to 19 characters + …");
  t.equal(cps(tr.payload.data.thing1!.value), 20);
  t.equal(tr.payload.data.thing2!.value, "line one line two", "line breaks removed");
  t.equal(tr.payload.data.character_string4!.value, "x".repeat(32), "character_string cut to 32");
  t.equal(tr.payload.data.phrase5!.value, "配送中", "valid fields untouched");
  t.notOk(tr.ok, "an amount cannot be repaired by cutting: still rejected");
  t.same(tr.rejected.map((f) => [f.field, f.rule, f.problem]), [["amount3", "amount", "format"]]);
  t.same(tr.findings.map((f) => [f.field, f.action]), [["thing1", "truncate"], ["thing2", "truncate"], ["amount3", "reject"], ["character_string4", "truncate"]]);
  t.equal(p.data.thing1!.value, long, "the input payload is not modified");

  const rj = enforceFieldRules(p, "reject");
  t.notOk(rj.ok);
  t.same(rj.rejected.map((f) => f.field), ["thing1", "thing2", "amount3", "character_string4"]);
  t.equal(rj.payload.data.thing1!.value, long, "reject changes nothing");

  const fine = enforceFieldRules(payload({ thing1: "West Lake", amount2: "¥128.5" }), "reject");
  t.ok(fine.ok);
  t.same(fine.findings, []);
});

t.test("field rules - first/remark and colours are dropped, reported, never rejected", async (t) => {
  const r = enforceFieldRules(payload({ first: "Hello", thing1: { value: "West Lake", color: "#173177" }, remark: { value: "Thanks", color: "#ff0000" } }), "reject");
  t.ok(r.ok);
  t.same(r.payload.data, { thing1: { value: "West Lake" } }, "first, remark and the colour are not sent");
  t.same(r.findings.map((f) => [f.field, f.problem, f.action]), [["first", "obsolete_key", "drop"], ["thing1", "color", "drop"], ["remark", "obsolete_key", "drop"]]);
});

t.test("field rules - upsert check: literals, literal text around expressions, obsolete keys, colours", async (t) => {
  const r = checkTemplateFields({
    thing1: "{{title}}",
    thing2: "A literal title that is far too long",
    amount3: "CNY 5",
    thing4: "Booked: {{title}}\n{{venue}}",
    thing5: "{{#if reason}}{{reason}}{{else}}用户取消{{/if}}",
    character_string6: "A very long prefix that alone is over 32 chars {{id}}",
    remark: { value: "感谢您的购买", color: "#173177" },
    amount7: { value: "¥{{amount}}", color: "#173177" },
  });
  t.same(
    r.errors.map((e) => [e.field, e.rule, e.problem]),
    [["thing2", "thing", "too_long"], ["amount3", "amount", "format"], ["thing4", "thing", "line_break"], ["character_string6", "character_string", "too_long"]],
  );
  t.same(r.warnings.map((w) => [w.field, w.problem]), [["remark", "obsolete_key"], ["amount7", "color"]]);
});

// Independent oracles for the properties: what the public rules say, written plainly.
const oracleThing = (v: string) => v.length > 0 && cps(v) <= 20 && !/[\r\n\u0085\u2028\u2029]/.test(v);

/** fc.assert as a counted tap assertion (a failing property shows its counterexample). */
const holds = (t: Test, name: string, run: () => void) => t.doesNotThrow(run, name);

t.test("field rules - properties", async (t) => {
  const text = fc.string({ unit: "grapheme", maxLength: 60 });
  const anyText = fc.oneof(text, fc.string({ unit: "binary", maxLength: 60 }), fc.constantFrom("\n", "a\r\nb", "x".repeat(20), "x".repeat(21), "西".repeat(20), "😀".repeat(21)));

  holds(t, "thing check agrees with the oracle", () => fc.assert(fc.property(anyText, (v) => (checkField("thing1", v) === null) === oracleThing(v)), { numRuns: 2000 }));

  // After truncate, a thing is always something WeChat accepts (unless it was empty), at most 20 characters, and a valid value is left alone.
  holds(t, "truncate yields an accepted thing of at most 20 characters and leaves valid values alone", () => fc.assert(
    fc.property(anyText, (v) => {
      const r = enforceFieldRules(payload({ thing1: v }), "truncate");
      const out = r.payload.data.thing1!.value;
      if (oracleThing(v)) return r.ok && out === v && r.findings.length === 0;
      if (!r.ok) return v.replace(/\s/gu, "") === "" && r.rejected[0]!.field === "thing1";
      return oracleThing(out) && cps(out) <= 20 && (cps(out) < 20 || out.endsWith("…") || cps(v.replace(/\s*[\r\n\u0085\u2028\u2029]+\s*/gu, " ").trim()) === 20);
    }),
    { numRuns: 2000 },
  ));

  // Repair is idempotent.
  holds(t, "repair is idempotent", () => fc.assert(fc.property(anyText, (v) => { const once = repair("thing1", v); return once === null || repair("thing1", once) === once; }), { numRuns: 1000 }));

  // Anything with a Chinese character is never a character_string; printable ASCII up to 32 always is.
  holds(t, "a Chinese character is never a character_string", () => fc.assert(fc.property(text, fc.constantFrom("订", "单", "西"), fc.nat(10), (s, han, at) => checkField("character_string1", [...s].slice(0, at).join("") + han) !== null)));
  holds(t, "printable ASCII up to 32 is a character_string", () => fc.assert(fc.property(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 32 }), (s) => checkField("character_string1", s) === null)));

  // amount: optional sign + 1..10 digits + up to 2 decimals is valid; 11 digits never.
  const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: min, maxLength: max });
  holds(t, "amount: sign + 1..10 digits + 2 decimals is valid", () => fc.assert(fc.property(fc.constantFrom("", "¥", "$", "￥"), digits(1, 10), fc.option(digits(1, 2)), (sign, int, dec) => checkField("amount1", `${sign}${int}${dec ? `.${dec}` : ""}`) === null)));
  holds(t, "amount: 11+ digits never", () => fc.assert(fc.property(fc.constantFrom("", "¥"), digits(11, 20), (sign, int) => checkField("amount1", sign + int)?.problem !== undefined)));

  // time/date: every real calendar day and 24-hour time, in each format, is accepted.
  holds(t, "time/date: every real day and time in each format", () => fc.assert(
    fc.property(fc.date({ min: new Date("1970-01-01"), max: new Date("2099-12-31"), noInvalidDate: true }), fc.boolean(), (d, seconds) => {
      const [y, m, day, hh, mm, ss] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
      const p2 = (n: number) => String(n).padStart(2, "0");
      const time = `${p2(hh)}:${p2(mm)}${seconds ? `:${p2(ss)}` : ""}`;
      const dates = [`${y}年${m}月${day}日`, `${y}-${p2(m)}-${p2(day)}`, `${y}/${p2(m)}/${p2(day)}`];
      return checkField("time1", time) === null && dates.every((ds) => checkField("date1", ds) === null && checkField("time1", `${ds} ${time}`) === null && checkField("date1", `${ds} ${time}`) === null);
    }),
  ));

  // Never throws, whatever the key and value, under both policies.
  holds(t, "never throws", () => fc.assert(
    fc.property(fc.string({ maxLength: 30 }), anyText, fc.constantFrom("truncate" as const, "reject" as const), (key, v, policy) => {
      const r = enforceFieldRules(payload({ [key]: v }), policy);
      return typeof r.ok === "boolean";
    }),
    { numRuns: 1000 },
  ));
});
