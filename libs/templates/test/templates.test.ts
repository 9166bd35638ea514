import t from "tap";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "@notify/nats-server";
import { ensureTopology } from "@notify/nats";
import { encodeJson, templateKey, type Template } from "@notify/contracts";
import { TemplateCache, TemplateError, compileTemplate, normalizeTemplate } from "@notify/templates";
import { paidTemplateBody } from "../../../test/support/fixtures.js";

/** The shared example template (test/support), stored as TPL_PAID. */
const paid = (over: Partial<Template> = {}): Template => ({ ...normalizeTemplate(paidTemplateBody({ template_id: "TPL_PAID" })), ...over });

t.test("templates - render maps data fields to WeChat keywords", async (t) => {
  const c = compileTemplate(paid());
  const p = c.render({ openid: "oX1", send_id: "snd_1", order_id: "O-1", data: { amount: 128.5, title: "West Lake <night> tour" } });
  t.same(p, {
    touser: "oX1",
    template_id: "TPL_PAID",
    client_msg_id: "snd_1",
    url: "https://m.example.com/orders/O-1",
    data: { thing1: { value: "West Lake <night> tour" }, amount2: { value: "¥128.5", color: "#173177" } },
  });
});

t.test("templates - validate names the missing fields", async (t) => {
  const r = compileTemplate(paid()).validate({ title: "x" });
  t.equal(r.ok, false);
  t.same(r.missing, ["amount"]);
  t.ok(compileTemplate(paid()).validate({ title: "x", amount: 1 }).ok);
});

t.test("templates - a bad schema or expression is refused with the field named", async (t) => {
  t.throws(() => compileTemplate(paid({ payload_schema: { type: "nope" } })), TemplateError);
  const e1 = (() => { try { compileTemplate(paid({ data: { thing1: "{{#if}}" } })); } catch (e) { return e as TemplateError; } })();
  t.equal(e1?.field, "data.thing1");
  const e2 = (() => { try { compileTemplate(paid({ data: { thing1: "{{exec 'rm -rf'}}" } })); } catch (e) { return e as TemplateError; } })();
  t.match(e2?.message, /unknown helper/);
  const e3 = (() => { try { compileTemplate(paid({ url: "{{#each}}" })); } catch (e) { return e as TemplateError; } })();
  t.equal(e3?.field, "url");
});

t.test("templates - expressions that name the prototype chain are refused, with the field named", async (t) => {
  const refused = [
    "{{constructor}}",
    "{{__proto__}}",
    "{{this.__proto__.x}}",
    "{{title.constructor.name}}",
    "{{[constructor]}}",
    "{{@root.constructor}}",
    "{{lookup this '__proto__'}}",
    '{{#with "s" as |string|}}{{lookup string.sub "constructor"}}{{/with}}',
    "{{#if (lookup title 'prototype')}}x{{/if}}",
    "{{title.__defineGetter__}}",
  ];
  for (const expr of refused) {
    const err = (() => { try { compileTemplate(paid({ data: { a: expr } })); } catch (e) { return e as TemplateError; } return null; })();
    t.ok(err instanceof TemplateError, `${expr}: refused`);
    t.equal(err?.field, "data.a");
    t.match(err?.message, /prototype chain/);
  }
  const url = (() => { try { compileTemplate(paid({ url: "https://x.example/{{constructor}}" })); } catch (e) { return e as TemplateError; } return null; })();
  t.equal(url?.field, "url", "in the url too");
  // Data is data: own keys with those names, and lookups computed at render time, are left
  // to Handlebars' runtime check, which renders inherited properties as nothing.
  const c = compileTemplate(paid({ data: { a: "[{{title}}][{{lookup this key}}][{{toString}}]" } }));
  t.equal(c.render({ openid: "o", data: { amount: 1, title: "{{constructor}}", key: "constructor" } }).data.a?.value, "[{{constructor}}][][]");
});

t.test("templates - cache loads stored templates, follows edits and resolves locales", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const { buckets } = await ensureTopology(nc);
  const kv = buckets.templates;
  await kv.put(templateKey("order.paid", "wechat", "zh-CN"), encodeJson(paid()));
  await kv.put(templateKey("order.paid", "wechat", "en"), encodeJson(paid({ language: "en", template_id: "TPL_EN" })));
  await kv.put(templateKey("order.paid", "wechat", "fr"), encodeJson(paid({ language: "fr", payload_schema: { type: 12 } as never })));

  const invalid: string[] = [];
  const changes: string[] = [];
  const cache = new TemplateCache(kv, { onInvalid: (k) => invalid.push(k), onChange: (k) => changes.push(k) });
  await cache.start();
  t.teardown(() => cache.stop());
  t.equal(cache.size, 2, "two valid templates loaded before start() resolves");
  t.same(invalid, ["order.paid.wechat.fr"], "the invalid one is reported and left out");

  t.equal(cache.resolve("order.paid", "wechat", "en-US")?.template.template_id, "TPL_EN", "en-US → en");
  t.equal(cache.resolve("order.paid", "wechat", "de-DE")?.template.template_id, "TPL_PAID", "de-DE → zh-CN");
  t.equal(cache.resolve("order.paid", "wechat", undefined)?.template.template_id, "TPL_PAID");
  t.equal(cache.resolve("order.cancelled", "wechat", "en"), undefined);

  await kv.put(templateKey("order.paid", "wechat", "en-US"), encodeJson(paid({ language: "en-US", template_id: "TPL_US" })));
  while (cache.resolve("order.paid", "wechat", "en-US")?.template.template_id !== "TPL_US") await new Promise((r) => setTimeout(r, 5));
  t.pass("an edit is seen without a restart");
  await kv.delete(templateKey("order.paid", "wechat", "en-US"));
  while (cache.resolve("order.paid", "wechat", "en-US")?.template.template_id !== "TPL_EN") await new Promise((r) => setTimeout(r, 5));
  t.pass("a delete falls back again");
});
