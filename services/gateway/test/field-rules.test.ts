// WeChat's typed keyword rules through the admin API: upsert refuses literals that can
// never be sent and reports first/remark/colours; preview shows each violation and what
// the template's field_policy does, and would_send tells the truth.
import t from "tap";
import { AUTH, appFor, startNats } from "./fixtures/helpers.js";

interface Finding {
  field: string;
  rule: string;
  problem: string;
  message: string;
  action: string;
}

t.test("gateway field rules", async (t) => {
  const nats = await startNats(t);
  const app = await appFor(t, nats);
  const upsert = (body: Record<string, unknown>) => app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: body });
  const preview = (event: string, data: Record<string, unknown>) =>
    app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event, openid: "oQA", order_id: "O-1", data } });
  const template = (event: string, data: Record<string, unknown>, over: Record<string, unknown> = {}) => ({ event, channel: "wechat", template_id: `TPL_${event}`, language: "zh-CN", data, ...over });

  await t.test("upsert: a literal breaking its rule is a 400 naming field and rule", async (t) => {
    const cases: Array<[string, string, string]> = [
      ["thing1", "A literal title that is far too long", "thing"],
      ["thing1", "line one\nline two", "thing"],
      ["character_string2", "订单号", "character_string"],
      ["phrase3", "配送中请稍候", "phrase"],
      ["amount4", "CNY 5", "amount"],
      ["time5", "tomorrow", "time"],
      ["date6", "2026-02-30", "date"],
      ["number7", "12a", "number"],
      ["letter8", "AB1", "letter"],
      ["symbol9", "abc", "symbol"],
      ["car_number10", "A粤8888", "car_number"],
      ["phone_number11", "call me", "phone_number"],
      ["name12", "张".repeat(11), "name"],
      ["const13", "x".repeat(21), "const"],
    ];
    for (const [field, value, rule] of cases) {
      const r = await upsert(template("order.paid", { [field]: value }));
      t.equal(r.statusCode, 400, `${field} = ${JSON.stringify(value)}: 400`);
      t.equal(r.json().details?.field, `data.${field}`, "names the field");
      t.equal(r.json().details?.rule, rule, "names the rule");
      t.match(r.json().message, new RegExp(`data\\.${field}: `));
    }
    const around = await upsert(template("order.paid", { thing1: "Booked:\n{{title}}" }));
    t.equal(around.statusCode, 400, "a line break in the text around an expression");
    t.equal(around.json().details.problem ?? around.json().details.violations[0].problem, "line_break");
  });

  await t.test("upsert: first/remark keys and colours are stored with warnings, never sent", async (t) => {
    const r = await upsert(template("order.paid", { first: "您好", thing1: { value: "{{title}}", color: "#173177" }, remark: { value: "感谢您的购买", color: "#ff0000" } }));
    t.equal(r.statusCode, 201);
    t.same(
      (r.json().warnings as Finding[]).map((w) => [w.field, w.problem, w.action]),
      [["first", "obsolete_key", "drop"], ["thing1", "color", "drop"], ["remark", "obsolete_key", "drop"]],
    );
    const p = await preview("order.paid", { title: "West Lake" });
    t.equal(p.statusCode, 200);
    t.same(p.json().payload.data, { thing1: { value: "West Lake" } }, "what WeChat gets: no first, remark or colour");
    t.equal(p.json().would_send, true, "dropping is not a reason not to send");
    t.equal((p.json().violations as Finding[]).length, 3, "each drop reported");
  });

  await t.test("preview: every keyword type valid, over the limit, with a line break; truncate vs reject", async (t) => {
    const data = {
      thing1: "{{thing}}", character_string2: "{{cs}}", phrase3: "{{phrase}}", name4: "{{name}}", amount5: "{{amount}}", number6: "{{number}}",
      time7: "{{time}}", date8: "{{date}}", car_number9: "{{car}}", phone_number10: "{{phone}}", letter11: "{{letter}}", symbol12: "{{symbol}}", const13: "{{const}}",
    };
    const valid = { thing: "West Lake night tour", cs: "O-1001", phrase: "配送中", name: "张三", amount: "¥128.50", number: "42", time: "2026年11月24日 15:01", date: "2026-11-24", car: "粤A8Z888挂", phone: "+86-0766-66888866", letter: "ABC", symbol: "#", const: "已支付" };
    const overLimit = { thing: "西湖".repeat(15), cs: "A".repeat(33), phrase: "配送中请稍候", name: "A".repeat(21), amount: "¥12345678901", number: "9".repeat(33), time: `${"2026年11月24日 15:01~".repeat(2)}15:02`, date: "2026-11-24~2026-11-25~2026-11-26", car: "粤A8Z888挂X", phone: "1".repeat(18), letter: "z".repeat(33), symbol: "!!!!!!", const: "x".repeat(21) };
    const lineBreak = Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, `${v.slice(0, 1)}\n${v.slice(1)}`]));
    const fields = Object.keys(data);

    for (const policy of ["truncate", "reject"] as const) {
      const r = await upsert(template("ticket.redeemed", data, { field_policy: policy, template_id: `TPL_ALL_${policy}` }));
      t.ok(r.statusCode === 200 || r.statusCode === 201, `stored with field_policy ${policy}`);
      t.equal(r.json().template.field_policy, policy);

      const ok = await preview("ticket.redeemed", valid);
      t.same(ok.json().violations, [], `${policy}: every valid value passes`);
      t.equal(ok.json().would_send, true);
      t.same(Object.values(ok.json().payload.data as Record<string, { value: string }>).map((d) => d.value), Object.values(valid), "sent unchanged");

      const over = await preview("ticket.redeemed", overLimit);
      const ov = over.json().violations as Finding[];
      t.same(ov.map((v) => v.field), fields, `${policy}: each over-the-limit value is reported`);
      for (const v of ov) t.match(v.message, new RegExp(`^${v.field}: `), `${v.field}: the message names the field`);
      if (policy === "truncate") {
        t.same(ov.filter((v) => v.action === "truncate").map((v) => v.field), ["thing1", "character_string2"], "truncate repairs thing and character_string");
        t.equal(over.json().payload.data.thing1.value, `${"西湖".repeat(10).slice(0, 19)}…`, "thing: 19 characters + …");
        t.equal(over.json().payload.data.character_string2.value, "A".repeat(32));
      } else {
        t.ok(ov.every((v) => v.action === "reject"), "reject: every violation rejects");
      }
      t.equal(over.json().would_send, false, "the others cannot be cut into shape: no send");
      t.equal(over.json().would_record, "failed: field_rule");

      const lb = await preview("ticket.redeemed", lineBreak);
      const lv = lb.json().violations as Finding[];
      t.same(lv.map((v) => [v.field, v.problem]), fields.map((f) => [f, "line_break"]), `${policy}: a line break is reported in every type`);
      if (policy === "truncate") {
        t.equal(lb.json().payload.data.thing1.value, "W est Lake night to…", "thing: the line break became a space, then 21 characters were cut to 19 + …");
        t.same(lv.filter((v) => v.action === "truncate").map((v) => v.field), ["thing1", "character_string2"]);
      }
      t.equal(lb.json().would_send, false);
    }

    // A thing alone, under truncate: the send goes ahead with the cut value.
    await upsert(template("ticket.redeemed", { thing1: "{{thing}}" }, { field_policy: "truncate", template_id: "TPL_THING" }));
    const cut = await preview("ticket.redeemed", { thing: "x".repeat(30_000) });
    t.equal(cut.json().would_send, true, "30 KB in a thing under truncate: sent, cut");
    t.equal(cut.json().payload.data.thing1.value, `${"x".repeat(19)}…`);
    await upsert(template("ticket.redeemed", { thing1: "{{thing}}" }, { field_policy: "reject", template_id: "TPL_THING" }));
    const refused = await preview("ticket.redeemed", { thing: "x".repeat(30_000) });
    t.equal(refused.json().would_send, false, "30 KB in a thing under reject: not sent");
    t.same((refused.json().violations as Finding[]).map((v) => [v.field, v.rule, v.problem, v.action]), [["thing1", "thing", "too_long", "reject"]]);
    t.match(refused.json().violations[0].message, "thing1: 30000 characters, thing allows at most 20");
  });

  await t.test("a bad field_policy is a 400", async (t) => {
    const r = await upsert(template("order.paid", { thing1: "{{title}}" }, { field_policy: "shorten" }));
    t.equal(r.statusCode, 400);
    t.match(r.json().message, /field_policy/);
  });
});
