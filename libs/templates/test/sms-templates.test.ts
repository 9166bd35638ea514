import t from "tap";
import fc from "fast-check";
import { SMS_PARAM_MAX_CHARS, type TemplateInput } from "@notify/contracts";
import { SmsParamError, TemplateError, compileTemplate, normalizeTemplate, smsLength } from "@notify/templates";

const sms = (over: Partial<TemplateInput> = {}) =>
  normalizeTemplate({ event: "ticket.refunded", channel: "sms", template_id: "1110", params: ["{{order_id}}", "{{amount}}"], ...over } as TemplateInput);

const fieldOf = (fn: () => unknown) => {
  try {
    fn();
    return null;
  } catch (err) {
    return err instanceof TemplateError ? err.field : `not a TemplateError: ${String(err)}`;
  }
};

t.test("sms templates - ordered params render from the event's data", async (t) => {
  const c = compileTemplate(sms({ params: ["{{order_id}}", "¥{{amount}}", "{{title}}"], param_max_length: 30 }));
  t.ok(c.sms, "an sms template has its sms part");
  const p = c.sms!.render({ phone: "+8613812345678", order_id: "O-1001", data: { amount: 128.5, title: "西湖夜游" } });
  t.same(p, { phone: "+8613812345678", template_id: "1110", params: ["O-1001", "¥128.5", "西湖夜游"] });
  t.equal(compileTemplate(normalizeTemplate({ event: "order.paid", channel: "wechat", template_id: "W", data: { a: "{{x}}" } })).sms, undefined, "a WeChat template has none");
});

t.test("sms templates - each parameter at most the limit (characters, not bytes), checked at upsert and at render", async (t) => {
  t.equal(SMS_PARAM_MAX_CHARS, 12);
  t.equal(fieldOf(() => compileTemplate(sms({ params: ["{{a}}", "this fixed text is long {{b}}"] }))), "params[1]", "fixed text over 12 refused at upsert");
  const c = compileTemplate(sms({ params: ["{{a}}"] }));
  t.same(c.sms!.render({ phone: "+8613812345678", data: { a: "十二个汉字十二个汉字十二" } }).params, ["十二个汉字十二个汉字十二"], "12 汉字 pass");
  t.throws(() => c.sms!.render({ phone: "+8613812345678", data: { a: "十三个汉字十三个汉字十三个" } }), SmsParamError);
  t.equal(fieldOf(() => c.sms!.render({ phone: "+8613812345678", data: { a: "x".repeat(13) } })), "params[0]");
  t.same(c.sms!.render({ phone: "+8613812345678", data: { a: "🎫".repeat(12) } }).params, ["🎫".repeat(12)], "a code point is one character");
  const wide = compileTemplate(sms({ params: ["{{a}}"], param_max_length: 100 }));
  t.equal(wide.sms!.render({ phone: "+8613812345678", data: { a: "x".repeat(100) } }).params[0]!.length, 100, "an enterprise template may allow more");
  fc.assert(
    fc.property(fc.string({ maxLength: 40, unit: "grapheme" }), (a) => {
      try {
        c.sms!.render({ phone: "+8613812345678", data: { a } });
        return smsLength(a) <= 12;
      } catch (err) {
        return err instanceof SmsParamError && smsLength(a) > 12;
      }
    }),
    { numRuns: 500 },
  );
});

t.test("sms templates - fields of the other channel are refused, naming them", async (t) => {
  t.equal(fieldOf(() => compileTemplate(sms({ params: undefined }))), "params", "params required on sms");
  t.equal(fieldOf(() => compileTemplate(sms({ data: { thing1: "{{x}}" } }))), "data");
  t.equal(fieldOf(() => compileTemplate(sms({ url: "https://x" }))), "url");
  t.equal(fieldOf(() => compileTemplate(sms({ fallback: "sms" }))), "fallback", "an SMS template cannot fall back to itself");
  t.equal(fieldOf(() => compileTemplate(sms({ params: ["{{constructor}}"] }))), "params[0]", "the prototype rule applies to params");
  t.equal(fieldOf(() => compileTemplate(sms({ params: ["{{#if}}"] }))), "params[0]", "a syntax error names the param");
  const wechat = (over: Partial<TemplateInput>) => normalizeTemplate({ event: "order.paid", channel: "wechat", template_id: "W", data: {}, ...over } as TemplateInput);
  t.equal(fieldOf(() => compileTemplate(wechat({ params: ["{{x}}"] }))), "params");
  t.equal(fieldOf(() => compileTemplate(wechat({ param_max_length: 20 }))), "param_max_length");
  t.equal(compileTemplate(wechat({ fallback: "sms" })).template.fallback, "sms", "fallback is a WeChat field");
});
