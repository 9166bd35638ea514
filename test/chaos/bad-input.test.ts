import t from "tap";
import { headers } from "@nats-io/transport-node";
import { MAX_ENVELOPE_BYTES, Status, Subjects, encodeJson, lockKey, templateKey, type EventEnvelope, type SendRecord } from "@notify/contracts";
import { rejectedRecordId } from "@notify/dispatcher";
import { repair } from "@notify/templates";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";
import { chaosBed, putTemplate, sendIdOf, stopwatch, summaryLine, tally, waitDelivered, workerEnv } from "../support/chaos.js";

const API_KEY = "chaos-bad-input-key-6d0a41f9c3";
const enc = new TextEncoder();
let corpusId = 0;

t.test("chaos - bad input on the bus and over HTTP: clear 4xx or a recorded rejected/failed; services stay up", async (t) => {
  const { server, nc, topo, records, js, sim, procs } = await chaosBed(t);
  // The order id travels in the link only: a character_string keyword takes at most 32
  // ASCII characters (WeChat's rule), which most of the odd ids below break on purpose.
  await putTemplate(topo.buckets.templates, paidTemplate({ data: { thing1: "{{title}}", amount2: "¥{{amount}}" } }));

  const env = workerEnv(server.url, sim);
  const [dispatcher, sender, gateway] = await Promise.all([
    procs.startReady("dispatcher", env),
    procs.startReady("sender", env),
    procs.startReady("gateway", { ...env, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", GATEWAY_API_KEYS: API_KEY }),
  ]);
  const base = String((await gateway!.ready()).openapi).replace(/\/openapi\.json$/, "");
  const http = (method: string, path: string, body?: string | Uint8Array, extra: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...extra },
      ...(body !== undefined ? { body } : {}),
    });
  const elapsed = stopwatch();

  /** Publishes raw bytes on a subject with a fresh Nats-Msg-Id; returns the id of the record it should leave. */
  const raw = async (subject: string, body: string | Uint8Array) => {
    const msgId = `corpus-${process.pid}-${++corpusId}`;
    const h = headers();
    h.set("Nats-Msg-Id", msgId);
    await js.publish(subject, typeof body === "string" ? enc.encode(body) : body, { headers: h });
    return rejectedRecordId(msgId, 0);
  };
  const recordOf = (id: string, what: string) => waitFor(async () => (await records.get(id))?.record ?? null, `the record of ${what}`, 20_000);

  await t.test("on the bus: every malformed envelope is recorded rejected with a reason", async (t) => {
    const valid = paidEvent();
    const paid = Subjects.event("order.paid");
    const cases: { name: string; subject: string; body: string | Uint8Array; reason: string; match?: RegExp }[] = [
      { name: "malformed JSON", subject: paid, body: `{"id": "evt_1", "event": `, reason: "not_json" },
      { name: "invalid UTF-8", subject: paid, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), reason: "not_json" },
      { name: "empty body", subject: paid, body: "", reason: "not_json" },
      { name: "JSON null", subject: paid, body: "null", reason: "invalid" },
      { name: "JSON array", subject: paid, body: "[1,2,3]", reason: "invalid" },
      { name: "order_id is a number", subject: paid, body: JSON.stringify({ ...valid, order_id: 1001 }), reason: "invalid", match: /order_id/ },
      { name: "recipient missing", subject: paid, body: JSON.stringify({ ...valid, recipient: undefined }), reason: "invalid", match: /recipient/ },
      { name: "openid with spaces", subject: paid, body: JSON.stringify({ ...valid, recipient: { openid: "o X" } }), reason: "invalid", match: /openid/ },
      { name: "occurred_at not a date", subject: paid, body: JSON.stringify({ ...valid, occurred_at: "yesterday" }), reason: "invalid", match: /occurred_at/ },
      { name: "event id with a space", subject: paid, body: JSON.stringify({ ...valid, id: "evt 1" }), reason: "invalid", match: /\/id/ },
      { name: "data is a string", subject: paid, body: JSON.stringify({ ...valid, data: "{{constructor}}" }), reason: "invalid", match: /data/ },
      { name: "unknown event", subject: Subjects.event("order.exploded"), body: JSON.stringify({ ...valid, event: "order.exploded" }), reason: "invalid", match: /event/ },
      { name: "event on another event's subject", subject: Subjects.event("order.cancelled"), body: JSON.stringify(valid), reason: "subject_mismatch" },
      { name: "order_id over 128 characters", subject: paid, body: JSON.stringify({ ...valid, order_id: "O".repeat(129) }), reason: "invalid", match: /order_id/ },
      {
        name: `envelope over MAX_ENVELOPE_BYTES (${MAX_ENVELOPE_BYTES})`,
        subject: paid,
        body: JSON.stringify({ ...valid, data: { ...valid.data, pad: "x".repeat(MAX_ENVELOPE_BYTES) } }),
        reason: "too_large",
      },
    ];
    for (const c of cases) {
      const id = await raw(c.subject, c.body);
      const rec = await recordOf(id, c.name);
      t.equal(rec.status, Status.rejected, `${c.name}: rejected`);
      t.equal(rec.reason, c.reason, `${c.name}: reason ${c.reason}`);
      if (c.match) t.match(rec.last_error, c.match, `${c.name}: the reason names the field`);
    }
    // Over the NATS max payload (1 MB by default): the client refuses before anything is stored.
    const huge = JSON.stringify({ ...valid, data: { pad: "x".repeat(1024 * 1024 + 10) } });
    await t.rejects(js.publish(paid, enc.encode(huge)), /payload|max/i, "an envelope over the server's max_payload fails at publish");
    t.notOk(nc.isClosed(), "and the publisher's connection stays usable");
    t.equal(sim.messages.length, 0, "nothing reached WeChat");
  });

  await t.test("on the bus: data that breaks the template schema is recorded failed with the ajv errors", async (t) => {
    const e = paidEvent({ data: { amount: "128.50", title: ["not", "a", "string"] } });
    await js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
    const rec = await waitFor(async () => (await records.get(sendIdOf(e)))?.record ?? null, "schema failure record");
    t.equal(rec.status, Status.failed);
    t.equal(rec.reason, "schema");
    t.match(rec.last_error, /amount|title/);
    t.ok((rec.errors ?? []).length >= 2, "the ajv errors are kept");
  });

  await t.test("on the bus: templates that break the rules are held invalid by the dispatcher, events for them are recorded failed", async (t) => {
    // Written around the gateway's validation, straight into the KV bucket.
    const badSchema = { ...paidTemplate({ event: "ticket.refunded", template_id: "TPL_BAD_SCHEMA" }), payload_schema: { type: "nonsense" } };
    await putTemplate(topo.buckets.templates, badSchema);
    await topo.buckets.templates.put(templateKey("ticket.expired", "wechat", "zh-CN"), enc.encode("{not json"));
    const badExpr = paidTemplate({ event: "ticket.redeemed", template_id: "TPL_BAD_EXPR", data: { thing1: "{{#each}}" } });
    await putTemplate(topo.buckets.templates, badExpr);
    await waitFor(() => dispatcher!.lines.filter((l) => l.includes("stored template does not compile")).length >= 3, "three templates refused", 10_000);
    for (const event of ["ticket.refunded", "ticket.expired", "ticket.redeemed"] as const) {
      const e = paidEvent({ event, ticket_id: `T-${event}` });
      await js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
      const rec = await waitFor(async () => (await records.get(sendIdOf(e)))?.record ?? null, `${event} record`);
      t.equal(rec.status, Status.failed, `${event}: recorded failed`);
      t.equal(rec.reason, "template_invalid", `${event}: the stored template does not compile`);
      t.match(rec.last_error, templateKey(event, "wechat", "zh-CN"), `${event}: the template is named`);
    }
  });

  const odd: EventEnvelope[] = [];
  await t.test("on the bus: odd characters and oversized ids in business keys are delivered once each, with no collision", async (t) => {
    const ids = [
      "A B", "A.B", "A_B", "A:B", "A/B", "A=B", "=QQ", "..", ".", ">", "*", "A.>", "A.*", "订单-2026-11-24", "ordre n°1", "emoji 🎫",
      "tab\there", "new\nline", "O".repeat(128), "🎫".repeat(128), "\u0000nul", "\ud800", "\ufffd", "\udfff",
    ];
    for (const order_id of ids) odd.push(paidEvent({ order_id }));
    // Both ids at their maximum size, in four-byte characters: the longest lock key there is.
    odd.push(paidEvent({ order_id: "🚀".repeat(128), ticket_id: "🎟".repeat(128) }));
    const keys = new Set(odd.map((e) => lockKey({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel: "wechat" })));
    t.equal(keys.size, odd.length, "every id gets its own lock key");
    t.ok([...keys].every((k) => /^[-/=.\w]+$/.test(k) && !k.includes("..") && !k.startsWith(".") && !k.endsWith(".")), "every lock key is a valid KV key");
    await Promise.all(odd.map((e) => js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id })));
    await waitDelivered(sim, odd, 30_000);
    const res = tally(sim, odd);
    t.equal(res.duplicated, 0, "none sent twice");
    const msgs = odd.map((e) => sim.deliveriesFor(sendIdOf(e))[0]!);
    t.same(msgs.map((m) => m.url), odd.map((e) => `https://m.example.com/orders/${e.order_id}`), "each message carries its own order id, unaltered");
  });

  await t.test("on the bus: template-looking and prototype-polluting data is rendered as text, never evaluated", async (t) => {
    const injections = [
      "{{constructor}}",
      "{{__proto__}}",
      "{{constructor.constructor('return process')()}}",
      "{{#with \"s\" as |string|}}{{lookup string.sub \"constructor\"}}{{/with}}",
      "${process.exit(1)}",
    ];
    const events = injections.map((title) => paidEvent({ data: { amount: 1, title } }));
    // JSON text with own __proto__ and constructor keys, as a hostile publisher would send it.
    const polluted = paidEvent();
    const pollutedJson = JSON.stringify(polluted).replace(`"data":{`, `"data":{"__proto__":{"polluted":"yes","title":"from-proto"},"constructor":{"prototype":{"polluted":"yes"}},`);
    await js.publish(Subjects.event(polluted.event), enc.encode(pollutedJson), { msgID: polluted.id });
    await Promise.all(events.map((e) => js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id })));
    await waitDelivered(sim, [...events, polluted], 20_000);
    for (const [i, e] of events.entries()) {
      // Verbatim, as text; a thing keyword holds at most 20 characters, so longer ones arrive cut (19 + …).
      t.equal(sim.deliveriesFor(sendIdOf(e))[0]!.data.thing1?.value, repair("thing1", injections[i]!), `delivered as text: ${injections[i]}`);
    }
    t.equal(sim.deliveriesFor(sendIdOf(polluted))[0]!.data.thing1?.value, polluted.data.title, "an own __proto__ key does not change what is rendered");
    t.ok(dispatcher!.alive && sender!.alive, "dispatcher and sender still running");
  });

  await t.test("over HTTP: the event ingress answers 4xx with a reason, valid odd ids get through", async (t) => {
    const valid = paidEvent();
    const cases: { name: string; body: string | Uint8Array; status: number; type?: string }[] = [
      { name: "malformed JSON", body: `{"id": `, status: 400 },
      { name: "JSON null", body: "null", status: 400 },
      { name: "wrong types", body: JSON.stringify({ ...valid, order_id: 5, recipient: "me" }), status: 400 },
      { name: "unknown event", body: JSON.stringify({ ...valid, event: "order.exploded" }), status: 400 },
      { name: "order_id too long", body: JSON.stringify({ ...valid, order_id: "O".repeat(129) }), status: 400 },
      { name: "__proto__ key", body: JSON.stringify(valid).replace(`"data":{`, `"data":{"__proto__":{"x":1},`), status: 400 },
      { name: "constructor.prototype key", body: JSON.stringify(valid).replace(`"data":{`, `"data":{"constructor":{"prototype":{"x":1}},`), status: 400 },
      { name: `over ${MAX_ENVELOPE_BYTES} bytes`, body: JSON.stringify({ ...valid, data: { pad: "x".repeat(MAX_ENVELOPE_BYTES) } }), status: 413 },
      { name: "over 1 MB", body: JSON.stringify({ ...valid, data: { pad: "x".repeat(1_100_000) } }), status: 413 },
      { name: "not JSON content type", body: "id=1", status: 415, type: "application/x-www-form-urlencoded" },
    ];
    for (const c of cases) {
      const res = await http("POST", "/notifications/events", c.body, c.type ? { "content-type": c.type } : {});
      t.equal(res.status, c.status, `${c.name}: ${c.status}`);
      const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
      t.ok(body.error && body.message, `${c.name}: says why (${body.error}: ${String(body.message).slice(0, 80)})`);
    }
    const noKey = await fetch(`${base}/notifications/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(valid) });
    t.equal(noKey.status, 401, "no key: 401");

    const viaHttp = ["HTTP A.B", "HTTP >", "HTTP 订单", "HTTP \ud83c\udfab"].map((order_id) => paidEvent({ order_id }));
    for (const e of viaHttp) t.equal((await http("POST", "/notifications/events", JSON.stringify(e))).status, 202, `${JSON.stringify(e.order_id)} accepted`);
    await waitDelivered(sim, viaHttp, 20_000);
    t.equal(tally(sim, viaHttp).duplicated, 0, "delivered once each");
  });

  await t.test("over HTTP: template upserts with invalid schemas or prototype-reaching expressions get 400 naming the part", async (t) => {
    const tpl = (over: Record<string, unknown>) =>
      JSON.stringify({
        event: "order.cancelled",
        channel: "wechat",
        template_id: "TPL_X",
        language: "zh-CN",
        payload_schema: { type: "object", properties: { title: { type: "string" } } },
        data: { thing1: "{{title}}" },
        ...over,
      });
    const invalid: { name: string; body: string; field: RegExp }[] = [
      { name: "schema type nonsense", body: tpl({ payload_schema: { type: "nonsense" } }), field: /payload_schema/ },
      { name: "schema required not an array", body: tpl({ payload_schema: { type: "object", required: "title" } }), field: /payload_schema/ },
      { name: "schema with a broken $ref", body: tpl({ payload_schema: { $ref: "#/definitions/missing" } }), field: /payload_schema/ },
      { name: "unclosed block", body: tpl({ data: { thing1: "{{#if title}}yes" } }), field: /thing1/ },
      { name: "unknown helper", body: tpl({ data: { thing1: "{{exec 'rm -rf /'}}" } }), field: /thing1/ },
      { name: "__proto__ key in the body", body: tpl({}).replace(`"data":{`, `"data":{"__proto__":{"x":"1"},`), field: /./ },
    ];
    for (const c of invalid) {
      const res = await http("POST", "/notifications/templates", c.body);
      const body = (await res.json()) as { error?: string; message?: string; details?: unknown };
      t.equal(res.status, 400, `${c.name}: 400`);
      t.match(`${body.message} ${JSON.stringify(body.details ?? "")}`, c.field, `${c.name}: names the part (${String(body.message).slice(0, 90)})`);
    }
    t.equal(((await (await http("GET", "/notifications/templates?event=order.cancelled")).json()) as { count: number }).count, 0, "none of them was stored");

    // Expressions that reach for the prototype chain: refused at upsert, with the field named.
    const injections = [
      { expr: "{{constructor}}", field: "data" },
      { expr: "{{__proto__.polluted}}", field: "data" },
      { expr: "{{title.constructor.constructor}}", field: "data" },
      { expr: "{{lookup title 'constructor'}}", field: "data" },
      { expr: "{{#with title}}{{lookup this '__proto__'}}{{/with}}", field: "data" },
      { expr: '{{#with "s" as |string|}}{{lookup string.sub "constructor"}}{{/with}}', field: "data" },
      { expr: "https://x.example/{{this.__proto__}}", field: "url" },
    ];
    for (const i of injections) {
      const body = i.field === "url" ? tpl({ url: i.expr }) : tpl({ data: { thing1: i.expr } });
      const res = await http("POST", "/notifications/templates", body);
      const answer = (await res.json()) as { message?: string; details?: { field?: string } };
      t.equal(res.status, 400, `${i.expr}: 400 at upsert`);
      t.match(answer.message, /prototype chain/, `${i.expr}: says why (${String(answer.message).slice(0, 90)})`);
      t.match(answer.details?.field ?? answer.message, i.field === "url" ? /url/ : /data\.thing1/, `${i.expr}: names the field`);
    }
    t.equal(((await (await http("GET", "/notifications/templates?event=order.cancelled")).json()) as { count: number }).count, 0, "no injection template was stored");
    const del = await http("DELETE", "/notifications/templates/order.cancelled/wechat/zh-CN");
    t.ok(del.status === 204 || del.status === 404, "clean-up");
    const preview = await http("POST", "/notifications/preview", JSON.stringify({ event: "order.paid", data: { amount: 1, title: "{{constructor}}" } }));
    t.equal(preview.status, 200, "a preview with template-looking data renders");
    t.equal(((await preview.json()) as { payload: { data: { thing1: { value: string } } } }).payload.data.thing1.value, "{{constructor}}", "as text");
  });

  await t.test("afterwards: every service is up and a normal event is delivered", async (t) => {
    t.same(procs.unexpectedExits(new Set()).map((p) => p.name), [], "no service process died");
    t.equal((await fetch(`${base}/healthz`)).status, 200, "the gateway answers");
    const e = paidEvent();
    await js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
    await waitDelivered(sim, [e], 20_000);
    const rec: SendRecord = await waitFor(async () => {
      const r = (await records.get(sendIdOf(e)))?.record;
      return r?.status === Status.success ? r : null;
    }, "the normal event's record to be success");
    t.equal(rec.attempts, 1, "first attempt");
    t.comment(summaryLine("bad-input-corpus", tally(sim, [...odd, e]), elapsed(), { services_up: procs.all.filter((p) => p.alive).length }));
  });
});
