import t from "tap";
import { AUTH, appFor, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);

const smsTemplate = (over: Record<string, unknown> = {}) => ({
  event: "ticket.refunded",
  channel: "sms",
  template_id: "1234567",
  language: "zh-CN",
  payload_schema: { type: "object", required: ["amount"], properties: { amount: { type: "number" } } },
  params: ["{{order_id}}", "{{amount}}"],
  ...over,
});

t.test("gateway - SMS templates live in the same bucket and API, and preview renders Tencent's params", async (t) => {
  const app = await appFor(t, nats);
  const created = await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: smsTemplate() });
  t.equal(created.statusCode, 201, created.body);
  t.same(created.json().template.params, ["{{order_id}}", "{{amount}}"], "params stored and returned");
  const got = await app.inject({ method: "GET", url: "/notifications/templates/ticket.refunded/sms/zh-CN", headers: AUTH });
  t.same(got.json().params, ["{{order_id}}", "{{amount}}"]);

  const preview = await app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event: "ticket.refunded", channel: "sms", order_id: "O-77", phone: "+8613812345678", data: { amount: 99 } } });
  t.equal(preview.statusCode, 200, preview.body);
  t.same(preview.json().payload, { phone: "+8613812345678", template_id: "1234567", params: ["O-77", "99"] });
  t.match(preview.json().send_id, /^snd_/);

  const tooLong = await app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event: "ticket.refunded", channel: "sms", order_id: "O-1234567890123", data: { amount: 1 } } });
  t.equal(tooLong.statusCode, 422);
  t.equal(tooLong.json().details.field, "params[0]");
  t.match(tooLong.json().message, /rendered to 15 characters, above the 12/);

  const badPhone = await app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event: "ticket.refunded", channel: "sms", phone: "13812345678", data: { amount: 1 } } });
  t.equal(badPhone.statusCode, 400, "preview phone must be E.164");

  const wechatFallback = await app.inject({
    method: "POST",
    url: "/notifications/templates",
    headers: AUTH,
    payload: { event: "ticket.refunded", channel: "wechat", template_id: "TPL_REFUND", data: { thing1: "{{order_id}}" }, fallback: "sms" },
  });
  t.equal(wechatFallback.statusCode, 201, wechatFallback.body);
  t.equal(wechatFallback.json().template.fallback, "sms");
});

t.test("gateway - SMS template upserts that Tencent would refuse are 400s naming the field", async (t) => {
  const app = await appFor(t, nats);
  const post = (payload: object) => app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload });
  const cases: Array<[object, string]> = [
    [smsTemplate({ event: "order.paid", params: ["{{order_id}}", "fixed text far too long {{amount}}"] }), "params[1]"],
    [smsTemplate({ event: "order.paid", params: undefined }), "params"],
    [smsTemplate({ event: "order.paid", data: { thing1: "{{x}}" } }), "data"],
    [smsTemplate({ event: "order.paid", fallback: "sms" }), "fallback"],
    [{ event: "order.paid", channel: "wechat", template_id: "W", data: {}, params: ["{{x}}"] }, "params"],
  ];
  for (const [body, field] of cases) {
    const res = await post(body);
    t.equal(res.statusCode, 400, `${field}: ${res.body}`);
    t.ok(JSON.stringify(res.json()).includes(field), `names ${field}`);
  }
  t.equal((await post(smsTemplate({ event: "order.paid", param_max_length: 501 }))).statusCode, 400, "param_max_length above 500 refused by the schema");
  t.equal((await post(smsTemplate({ event: "order.paid", params: Array.from({ length: 21 }, () => "x") }))).statusCode, 400, "more than 20 params refused");
  t.equal((await post({ event: "order.paid", channel: "wechat", template_id: "W", data: {}, fallback: "email" })).statusCode, 400, "fallback is sms or nothing");
});
