import t from "tap";
import { templateKey } from "@notify/contracts";
import { TemplateCache, enforceFieldRules } from "@notify/templates";
import { AUTH, appFor, paidTemplate, startNats } from "./fixtures/helpers.js";
import { waitFor } from "../../../test/support/wait.js";

const nats = await startNats(t);

t.test("gateway - create, list and preview round-trip", async (t) => {
  const app = await appFor(t, nats);
  const created = await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate() });
  t.equal(created.statusCode, 201, "created");
  const body = created.json();
  t.equal(body.created, true);
  t.equal(body.template.enabled, true, "enabled defaults to true");
  t.equal(created.headers.etag, `"${body.template.revision}"`, "ETag is the KV revision");

  const stored = await nats.topology.buckets.templates.get(templateKey("order.paid", "wechat", "zh-CN"));
  t.equal(stored?.revision, body.template.revision, "stored in notification_templates under <event>.<channel>.<language>");
  t.equal(stored?.json<{ template_id: string }>().template_id, "TPL_PAID_V1");

  const list = await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH });
  t.equal(list.statusCode, 200);
  t.ok(list.json().items.some((i: { template_id: string }) => i.template_id === "TPL_PAID_V1"), "listed");

  const filtered = await app.inject({ method: "GET", url: "/notifications/templates?event=order.cancelled", headers: AUTH });
  t.same(filtered.json(), { items: [], count: 0 }, "the event filter applies");
  const byLang = await app.inject({ method: "GET", url: "/notifications/templates?event=order.paid&channel=wechat&language=zh-CN&enabled=true", headers: AUTH });
  t.equal(byLang.json().count, 1, "event, channel, language and enabled filters");

  const preview = await app.inject({
    method: "POST",
    url: "/notifications/preview",
    headers: AUTH,
    payload: { event: "order.paid", language: "en-US", order_id: "O-1001", openid: "oTraveller1", data: { amount: 128.5, title: "West Lake night tour" } },
  });
  t.equal(preview.statusCode, 200);
  const p = preview.json();
  t.same(p.payload, {
    touser: "oTraveller1",
    template_id: "TPL_PAID_V1",
    url: "https://m.example.com/orders/O-1001",
    client_msg_id: p.send_id,
    data: { thing1: { value: "West Lake night tour" }, amount2: { value: "¥128.5" } },
  }, "the exact WeChat payload, rendered by @notify/templates (the colour is not sent)");
  t.same(p.violations.map((v: { field: string; problem: string; action: string }) => [v.field, v.problem, v.action]), [["amount2", "color", "drop"]], "the dropped colour is reported");
  t.equal(p.field_policy, "truncate", "the default policy");
  t.match(p.send_id, /^snd_[0-9a-f]{32}$/);
  t.equal(p.template.language, "zh-CN", "en-US → en → zh-CN fallback");
  t.equal(p.would_send, true);

  const one = await app.inject({ method: "GET", url: "/notifications/templates/order.paid/wechat/zh-CN", headers: AUTH });
  t.equal(one.statusCode, 200);
  t.equal(one.headers.etag, `"${body.template.revision}"`);
});

t.test("gateway - invalid templates are refused with 400 naming what is wrong", async (t) => {
  const app = await appFor(t, nats);
  const post = (payload: unknown) => app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: payload as object });

  const badSchema = await post(paidTemplate({ event: "ticket.expired", payload_schema: { type: "objekt" } }));
  t.equal(badSchema.statusCode, 400);
  t.equal(badSchema.json().error, "bad_request");
  t.equal(badSchema.json().details.field, "payload_schema", "names payload_schema");

  const badExpr = await post(paidTemplate({ event: "ticket.expired", data: { thing1: "{{#if title}}unclosed" } }));
  t.equal(badExpr.statusCode, 400);
  t.equal(badExpr.json().details.field, "data.thing1", "names the expression that does not compile");

  const badUrl = await post(paidTemplate({ event: "ticket.expired", url: "{{oops" }));
  t.equal(badUrl.json().details.field, "url");

  const missing = await post({ event: "ticket.expired", channel: "wechat" });
  t.equal(missing.statusCode, 400);
  t.match(missing.json().message, /template_id/, "the contract's required field is named");

  const badEnum = await post(paidTemplate({ event: "order.shipped" }));
  t.equal(badEnum.statusCode, 400);
  t.match(badEnum.json().message, /event/);

  const unknownField = await post(paidTemplate({ event: "ticket.expired", enable: false }));
  t.equal(unknownField.statusCode, 400, "a misspelt field is an error, not silently dropped");

  const badJson = await app.inject({ method: "POST", url: "/notifications/templates", headers: { ...AUTH, "content-type": "application/json" }, payload: "{not json" });
  t.equal(badJson.statusCode, 400);
  t.same(Object.keys(badJson.json()).sort(), ["error", "message"]);

  const none = await nats.topology.buckets.templates.get(templateKey("ticket.expired", "wechat", "zh-CN"));
  t.equal(none, null, "nothing was stored");
});

t.test("gateway - optimistic concurrency: If-Match / If-None-Match on the KV revision", async (t) => {
  const app = await appFor(t, nats);
  const url = "/notifications/templates";
  const tpl = paidTemplate({ event: "ticket.refunded", template_id: "TPL_REFUND_V1" });
  const first = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-none-match": "*" }, payload: tpl });
  t.equal(first.statusCode, 201);
  const rev1 = first.headers.etag as string;

  const again = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-none-match": "*" }, payload: tpl });
  t.equal(again.statusCode, 412, "If-None-Match: * refuses to overwrite");
  t.equal(again.json().error, "precondition_failed");

  const edit = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-match": rev1 }, payload: { ...tpl, template_id: "TPL_REFUND_V2" } });
  t.equal(edit.statusCode, 200, "If-Match with the current revision updates");
  const rev2 = edit.headers.etag as string;
  t.not(rev2, rev1);

  const stale = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-match": rev1 }, payload: { ...tpl, template_id: "TPL_REFUND_LOST" } });
  t.equal(stale.statusCode, 412, "a stale revision gets 412");
  const current = await app.inject({ method: "GET", url: "/notifications/templates/ticket.refunded/wechat/zh-CN", headers: AUTH });
  t.equal(current.json().template_id, "TPL_REFUND_V2", "the lost update did not land");

  const weak = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-match": `W/${rev2}` }, payload: tpl });
  t.equal(weak.statusCode, 200, "a weak ETag form is accepted");
  const rev3 = weak.headers.etag as string;

  const garbage = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-match": "yesterday" }, payload: tpl });
  t.equal(garbage.statusCode, 400, "an If-Match that is not an ETag is a 400");

  const mustExist = await app.inject({ method: "POST", url, headers: { ...AUTH, "if-match": "*" }, payload: paidTemplate({ event: "order.cancelled" }) });
  t.equal(mustExist.statusCode, 412, "If-Match: * on a missing template");

  const staleDelete = await app.inject({ method: "DELETE", url: "/notifications/templates/ticket.refunded/wechat/zh-CN", headers: { ...AUTH, "if-match": rev2 } });
  t.equal(staleDelete.statusCode, 412, "DELETE with a stale If-Match");
  const del = await app.inject({ method: "DELETE", url: "/notifications/templates/ticket.refunded/wechat/zh-CN", headers: { ...AUTH, "if-match": rev3 } });
  t.equal(del.statusCode, 204);
  const gone = await app.inject({ method: "GET", url: "/notifications/templates/ticket.refunded/wechat/zh-CN", headers: AUTH });
  t.equal(gone.statusCode, 404);
  t.equal(gone.json().error, "not_found");
  const delAgain = await app.inject({ method: "DELETE", url: "/notifications/templates/ticket.refunded/wechat/zh-CN", headers: AUTH });
  t.equal(delAgain.statusCode, 404);

  const history = await app.inject({ method: "GET", url: "/notifications/templates/ticket.refunded/wechat/zh-CN/history", headers: AUTH });
  t.equal(history.statusCode, 200);
  t.same(
    history.json().items.map((i: { operation: string; template?: { template_id: string } }) => [i.operation, i.template?.template_id]),
    [["PUT", "TPL_REFUND_V1"], ["PUT", "TPL_REFUND_V2"], ["PUT", "TPL_REFUND_V1"], ["DEL", undefined]],
    "the KV history is the edit audit",
  );

  const recreated = await app.inject({ method: "POST", url, headers: AUTH, payload: tpl });
  t.equal(recreated.statusCode, 201, "a deleted template can be created again");
});

t.test("gateway - preview: 404 without a template after locale fallback, 422 with ajv errors", async (t) => {
  const app = await appFor(t, nats);
  const preview = (payload: object) => app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload });

  const none = await preview({ event: "ticket.redeemed", language: "en-US", data: {} });
  t.equal(none.statusCode, 404);
  t.match(none.json().message, /en-US, en, zh-CN/, "says which languages were tried");

  await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate({ event: "ticket.redeemed", template_id: "TPL_REDEEM_ZH" }) });
  await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate({ event: "ticket.redeemed", template_id: "TPL_REDEEM_EN", language: "en" }) });
  const en = await preview({ event: "ticket.redeemed", language: "en-GB", data: { amount: 1, title: "x" } });
  t.equal(en.json().payload.template_id, "TPL_REDEEM_EN", "en-GB falls back to en");
  const ja = await preview({ event: "ticket.redeemed", language: "ja-JP", data: { amount: 1, title: "x" } });
  t.equal(ja.json().payload.template_id, "TPL_REDEEM_ZH", "ja-JP falls back to zh-CN");

  const short = await preview({ event: "ticket.redeemed", data: { title: "x" } });
  t.equal(short.statusCode, 422);
  const b = short.json();
  t.equal(b.error, "unprocessable_entity");
  t.same(b.details.missing, ["amount"], "names the missing field");
  t.ok(b.details.errors.some((e: { keyword: string }) => e.keyword === "required"), "carries the ajv errors");

  const wrongType = await preview({ event: "ticket.redeemed", data: { title: "x", amount: "lots" } });
  t.equal(wrongType.statusCode, 422);
  t.equal(wrongType.json().details.errors[0].instancePath, "/amount");

  const noData = await preview({ event: "ticket.redeemed" });
  t.equal(noData.statusCode, 400, "the contract requires data");

  await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate({ event: "ticket.redeemed", template_id: "TPL_REDEEM_ZH", enabled: false }) });
  const disabled = await preview({ event: "ticket.redeemed", data: { amount: 1, title: "x" } });
  t.equal(disabled.statusCode, 200, "a disabled template still previews");
  t.equal(disabled.json().would_send, false, "but says the dispatcher would not send it");
});

t.test("gateway - a template edited through the API is used by the dispatcher without a restart", async (t) => {
  const app = await appFor(t, nats);
  // The dispatcher resolves templates from exactly this cache, watching the same bucket.
  const cache = new TemplateCache(nats.topology.buckets.templates);
  await cache.start();
  t.teardown(() => cache.stop());

  const tpl = paidTemplate({ event: "order.cancelled", template_id: "TPL_CANCEL_V1", data: { thing1: "cancelled: {{title}}" } });
  const v1 = await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: tpl });
  const rev1 = v1.json().template.revision as number;
  await until(() => cache.resolve("order.cancelled", "wechat", "zh-CN")?.revision === rev1);
  const ctx = { openid: "o1", data: { amount: 1, title: "Lake tour" } };
  t.equal(cache.resolve("order.cancelled", "wechat", "zh-CN")!.render(ctx).data.thing1!.value, "cancelled: Lake tour");

  const v2 = await app.inject({
    method: "POST",
    url: "/notifications/templates",
    headers: { ...AUTH, "if-match": v1.headers.etag as string },
    payload: { ...tpl, template_id: "TPL_CANCEL_V2", data: { thing1: "Order {{order_id}} cancelled: {{title}}" } },
  });
  t.equal(v2.statusCode, 200);
  const rev2 = v2.json().template.revision as number;
  await until(() => cache.resolve("order.cancelled", "wechat", "zh-CN")?.revision === rev2);
  const compiled = cache.resolve("order.cancelled", "wechat", "zh-CN")!;
  t.equal(compiled.template.template_id, "TPL_CANCEL_V2", "the running cache holds the new revision");
  t.equal(compiled.render({ ...ctx, order_id: "O-9" }).data.thing1!.value, "Order O-9 cancelled: Lake tour", "and renders with it");

  const preview = await app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event: "order.cancelled", order_id: "O-9", openid: "o1", data: ctx.data } });
  t.same(preview.json().payload.data, enforceFieldRules(compiled.render({ ...ctx, order_id: "O-9" })).payload.data, "preview and dispatcher render the same payload");
  t.equal(preview.json().payload.data.thing1.value, "Order O-9 cancelled…", "30 characters in a thing: cut to 19 + …");

  const del = await app.inject({ method: "DELETE", url: "/notifications/templates/order.cancelled/wechat/zh-CN", headers: AUTH });
  t.equal(del.statusCode, 204);
  await until(() => cache.resolve("order.cancelled", "wechat", "zh-CN") === undefined);
  t.pass("a delete reaches the cache too");
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test("gateway - preview of a stored template that does not compile answers 409 naming the part", async (t) => {
  const app = await appFor(t, nats);
  // Only a write around the API can store this; the gateway says which template and part.
  const key = templateKey("ticket.expired", "sms", "zh-CN");
  const bad = { ...paidTemplate({ event: "ticket.expired", channel: "sms", payload_schema: { type: "objekt" } }), enabled: true, updated_at: new Date().toISOString() };
  await nats.topology.buckets.templates.put(key, JSON.stringify(bad));
  t.teardown(() => nats.topology.buckets.templates.purge(key));
  // Written around the API, so nothing waits for the gateway's watched cache: poll until it has it.
  const preview = () => app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event: "ticket.expired", channel: "sms", data: {} } });
  const res = await waitFor(async () => {
    const r = await preview();
    return r.statusCode === 404 ? null : r;
  }, "the gateway's cache to see the stored template", 10_000);
  t.equal(res.statusCode, 409);
  t.equal(res.json().details.field, "payload_schema");
  t.match(res.json().message, /ticket\.expired\.sms\.zh-CN@\d+ does not compile/);
});

t.test("gateway - the template list: ETag and If-None-Match, and a change seen as soon as the watch delivers it", async (t) => {
  const app = await appFor(t, nats);
  const first = await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH });
  t.equal(first.statusCode, 200);
  const tag = first.headers.etag as string;
  t.match(tag, /^"[A-Za-z0-9_-]+"$/, "a strong ETag");
  t.equal((await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH })).headers.etag, tag, "the same list, the same tag");

  const notModified = await app.inject({ method: "GET", url: "/notifications/templates", headers: { ...AUTH, "if-none-match": tag } });
  t.equal(notModified.statusCode, 304, "If-None-Match with the current tag: 304");
  t.equal(notModified.body, "", "and no body");
  t.equal(notModified.headers.etag, tag);
  t.equal((await app.inject({ method: "GET", url: "/notifications/templates", headers: { ...AUTH, "if-none-match": `"other", W/${tag}` } })).statusCode, 304, "a list of tags, weak comparison");
  t.equal((await app.inject({ method: "GET", url: "/notifications/templates", headers: { ...AUTH, "if-none-match": '"other"' } })).statusCode, 200, "another tag: the list");
  t.equal((await app.inject({ method: "GET", url: "/notifications/templates", headers: { "if-none-match": tag } })).statusCode, 401, "no key, no 304");
  const filtered = await app.inject({ method: "GET", url: "/notifications/templates?channel=sms", headers: AUTH });
  if (filtered.json().count !== first.json().count) t.not(filtered.headers.etag, tag, "a filtered list has its own tag");

  // A template written straight into the bucket (another gateway, a restore): the list has it
  // as soon as this gateway's watch delivers it, under a new tag; the old tag no longer matches.
  const key = templateKey("ticket.refunded", "wechat", "ja-JP");
  const tpl = { ...paidTemplate(), event: "ticket.refunded", language: "ja-JP", template_id: "TPL_LIST_ETAG" };
  const created = await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: tpl });
  t.equal(created.statusCode, 201, "created");
  const stored = await nats.topology.buckets.templates.get(key);
  await nats.topology.buckets.templates.put(key, new TextEncoder().encode(JSON.stringify({ ...stored!.json<Record<string, unknown>>(), template_id: "TPL_LIST_ETAG_2" })));
  t.teardown(() => nats.topology.buckets.templates.purge(key));
  const listed = await waitFor(async () => {
    const r = await app.inject({ method: "GET", url: "/notifications/templates", headers: { ...AUTH, "if-none-match": tag } });
    return r.statusCode === 200 && r.json().items.some((i: { template_id: string }) => i.template_id === "TPL_LIST_ETAG_2") ? r : null;
  }, "the direct write in the list", 30_000);
  t.ok(listed, "the direct write is listed");
  t.not(listed!.headers.etag, tag, "under a new tag");
  t.notOk(listed!.json().items.some((i: { template_id: string }) => i.template_id === "TPL_LIST_ETAG"), "the replaced revision is gone");
  t.equal((await app.inject({ method: "GET", url: "/notifications/templates", headers: { ...AUTH, "if-none-match": listed!.headers.etag as string } })).statusCode, 304);
});
