// Hostile templates through the real gateway, dispatcher and sender processes on a real
// nats-server and the WeChat simulator: refused at upsert with the place named, and when
// written around the API (straight into KV) recorded per event, never a crash or a stall.
import t, { type Test } from "tap";
import { Status, Subjects, encodeJson, type EventEnvelope, type SendRecord } from "@notify/contracts";
import { paidEvent, paidTemplate, paidTemplateBody } from "../../../test/support/fixtures.js";
import { waitFor } from "../../../test/support/wait.js";
import { chaosBed, putTemplate, sendIdOf, waitDelivered, workerEnv } from "../../../test/support/chaos.js";

const API_KEY = "hardening-key-3e9c1d7a55b0";

t.test("template hardening - classes 1-3 through the real services", async (t) => {
  const { server, topo, records, js, sim, procs } = await chaosBed(t);
  await putTemplate(topo.buckets.templates, paidTemplate({ data: { thing1: "{{title}}", amount2: "¥{{amount}}" } }));

  const env = workerEnv(server.url, sim);
  const [dispatcher, , gateway] = await Promise.all([
    // Generous start-up time: the suite shares a small machine.
    procs.startReady("dispatcher", env, "dispatcher", 120_000),
    procs.startReady("sender", env, "sender", 120_000),
    procs.startReady("gateway", { ...env, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", GATEWAY_API_KEYS: API_KEY }, "gateway", 120_000),
  ]);
  const base = String((await gateway!.ready()).openapi).replace(/\/openapi\.json$/, "");
  const http = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, any> };
  };
  const upsert = (over: Record<string, unknown>) => http("POST", "/notifications/templates", paidTemplateBody(over));
  const publish = async (e: EventEnvelope) => void (await js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id }));
  const recordOf = (e: EventEnvelope, what: string) =>
    waitFor(async () => {
      const r = (await records.get(sendIdOf(e)))?.record;
      return r && r.status !== Status.queued && r.status !== Status.retrying ? r : null;
    }, what, 30_000);
  /** After each hostile case: every service still up, and an ordinary event is delivered once. */
  const stillServing = async (t: Test, label: string) => {
    t.same(procs.unexpectedExits(new Set()).map((p) => p.name), [], `${label}: no process exited`);
    t.equal((await http("GET", "/healthz")).status, 200, `${label}: the gateway answers /healthz`);
    const normal = paidEvent();
    await publish(normal);
    await waitDelivered(sim, [normal], 30_000, `${label}: a normal event afterwards`);
    t.equal(sim.deliveriesFor(sendIdOf(normal)).length, 1, `${label}: a normal event afterwards is delivered once`);
  };

  await t.test("class 1: $async, $id, $data and remote $ref are refused at upsert with the keyword and place", async (t) => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ $async: true, type: "object" }, "$async", "/$async"],
      [{ type: "object", properties: { title: { $id: "https://evil.example/t", type: "string" } } }, "$id", "/properties/title/$id"],
      [{ type: "object", properties: { amount: { type: "number", maximum: { $data: "1/cap" } } } }, "$data", "/properties/amount/maximum/$data"],
      [{ type: "object", properties: { title: { $ref: "https://evil.example/s.json" } } }, "$ref", "/properties/title/$ref"],
    ];
    for (const [payload_schema, keyword, path] of cases) {
      const res = await upsert({ event: "ticket.expired", payload_schema });
      t.equal(res.status, 400, `${keyword}: 400`);
      t.equal(res.body.details?.field, "payload_schema", `${keyword}: the field`);
      t.equal(res.body.details?.keyword, keyword, `${keyword}: the keyword`);
      t.equal(res.body.details?.path, path, `${keyword}: the JSON pointer`);
      t.match(res.body.message, keyword);
    }
    const typo = await upsert({ event: "ticket.expired", payload_schema: { type: "object", requried: ["title"] } });
    t.equal(typo.status, 400, "a misspelt keyword is a 400, not a schema that checks nothing");
    t.equal(typo.body.details?.keyword, "requried");
    const format = await upsert({ event: "ticket.expired", payload_schema: { type: "object", properties: { mail: { type: "string", format: "emial" } } } });
    t.equal(format.status, 400, "an unknown format is a 400");
    t.match(format.body.message, /unknown format "emial"/);
  });

  await t.test("class 1: a $ref schema updated again and again compiles every revision (no ids shared)", async (t) => {
    const payload_schema = {
      type: "object",
      definitions: { money: { type: "number", minimum: 0 } },
      required: ["amount", "title"],
      properties: { amount: { $ref: "#/definitions/money" }, title: { type: "string" } },
    };
    for (let i = 1; i <= 3; i++) {
      const res = await upsert({ event: "order.cancelled", template_id: `TPL_CANCEL_${i}`, payload_schema });
      t.ok(res.status === 200 || res.status === 201, `revision ${i} stored`);
      const p = await http("POST", "/notifications/preview", { event: "order.cancelled", data: { amount: -1, title: "x" } });
      t.equal(p.status, 422, `revision ${i}: the $ref is enforced in preview`);
    }
  });

  await t.test("class 1: a stored $async template (written around the API) is recorded failed per event, no crash loop", async (t) => {
    const stored = paidTemplate({ event: "ticket.refunded", template_id: "TPL_ASYNC", payload_schema: { $async: true, type: "object" } });
    await putTemplate(topo.buckets.templates, stored);
    await waitFor(() => dispatcher!.lines.some((l) => l.includes("stored template does not compile") && l.includes("ticket.refunded")), "the dispatcher sees the template", 10_000);
    const e = paidEvent({ event: "ticket.refunded", ticket_id: "T-async" });
    await publish(e);
    const rec = await recordOf(e, "the record of the $async event");
    t.equal(rec.status, Status.failed);
    t.equal(rec.reason, "template_invalid");
    t.match(rec.last_error, /\$async/);
    const p = await http("POST", "/notifications/preview", { event: "ticket.refunded", data: {} });
    t.equal(p.status, 409, "preview names the stored template that does not compile (not a 500)");
    await stillServing(t, "$async");
  });

  await t.test("class 2: a catastrophic pattern is checked in linear time: the event is recorded, nothing stalls", async (t) => {
    const payload_schema = { type: "object", required: ["title"], properties: { title: { type: "string", pattern: "^(a+)+$" } } };
    const res = await upsert({ event: "ticket.redeemed", payload_schema });
    t.equal(res.status, 201, "accepted: RE2 has no catastrophic case");
    // 40 a's and a '!': a backtracking engine needs ~2^40 steps, so this test would time out.
    const evil = `${"a".repeat(40)}!`;
    const [p, health] = await Promise.all([
      http("POST", "/notifications/preview", { event: "ticket.redeemed", data: { title: evil } }),
      http("GET", "/healthz"),
    ]);
    t.equal(p.status, 422, "preview: the title does not match");
    t.equal(health.status, 200);
    t.equal((await http("POST", "/notifications/preview", { event: "ticket.redeemed", data: { title: "aaaa" } })).status, 200);
    await waitFor(() => dispatcher!.lines.some((l) => l.includes('"key":"ticket.redeemed.wechat.zh-CN"')), "the dispatcher has the template", 10_000);
    const e = paidEvent({ event: "ticket.redeemed", ticket_id: "T-redos", data: { amount: 1, title: `${"a".repeat(5000)}!` } });
    await publish(e);
    const rec = await recordOf(e, "the record of the ReDoS event");
    t.equal(rec.status, Status.failed);
    t.equal(rec.reason, "schema");

    for (const [pattern, why] of [["(a)\\1", /backreferences/], ["^(?=x)", /lookaround/], ["x".repeat(300), /at most 256/], ["\\p{L}{1000}", /instructions/]] as const) {
      const bad = await upsert({ event: "ticket.redeemed", payload_schema: { type: "object", properties: { title: { type: "string", pattern } } } });
      t.equal(bad.status, 400, `${pattern.slice(0, 20)}: 400`);
      t.equal(bad.body.details?.path, "/properties/title/pattern");
      t.match(bad.body.message, why);
    }
    await stillServing(t, "ReDoS pattern");
  });

  await t.test("class 3: partials, decorators, log, missing-helper hooks and unknown helpers are refused with line and column", async (t) => {
    const cases: [string, RegExp][] = [
      ["{{> header}}", /partials/],
      ["{{#> layout}}x{{/layout}}", /partials/],
      ["{{* decorate}}", /decorators/],
      ["{{log title}}", /"log"/],
      ["{{helperMissing}}", /"helperMissing"/],
      ["{{blockHelperMissing title}}", /"blockHelperMissing"/],
      ["{{exec title}}", /unknown helper "exec"/],
    ];
    for (const [expr, why] of cases) {
      const res = await upsert({ event: "ticket.expired", data: { thing1: `Order:\n  ${expr}` } });
      t.equal(res.status, 400, `${expr}: 400`);
      t.equal(res.body.details?.field, "data.thing1");
      t.same([res.body.details?.line, res.body.details?.column], [2, 3], `${expr}: line 2, column 3`);
      t.match(res.body.message, why);
    }
  });

  await t.test("class 3: a render error is a 422 in preview and failed(render) in the dispatcher", async (t) => {
    const loop = "{{#each items}}{{#each ../items}}{{#each ../../items}}x{{/each}}{{/each}}{{/each}}";
    // order.paid in English: the zh-CN template keeps serving the normal events.
    const res = await upsert({ language: "en", template_id: "TPL_LOOP", payload_schema: { type: "object" }, data: { thing1: loop } });
    t.equal(res.status, 201);
    const items = Array.from({ length: 200 }, (_, i) => i);
    const p = await http("POST", "/notifications/preview", { event: "order.paid", language: "en", data: { items } });
    t.equal(p.status, 422, "preview: 422, not 500");
    t.equal(p.body.details?.reason, "render");
    await waitFor(() => dispatcher!.lines.some((l) => l.includes('"key":"order.paid.wechat.en"')), "the dispatcher has the template", 10_000);
    const e = paidEvent({ recipient: { openid: "oLoop", locale: "en" }, data: { items } });
    await publish(e);
    const rec: SendRecord = await recordOf(e, "the record of the looping event");
    t.equal(rec.status, Status.failed);
    t.equal(rec.reason, "render");
    t.match(rec.last_error, /iterations/);
    await stillServing(t, "render budget");
  });

  await t.test("class 3: a stored {{log}} template cannot print publisher data: recorded failed, nothing forged on stdout", async (t) => {
    const stored = paidTemplate({ event: "ticket.expired", template_id: "TPL_LOG", data: { thing1: "{{log title}}" } });
    await putTemplate(topo.buckets.templates, stored);
    await waitFor(() => dispatcher!.lines.some((l) => l.includes("stored template does not compile") && l.includes("ticket.expired")), "the dispatcher refuses it", 10_000);
    const forged = '{"level":"info","msg":"forged line"}';
    const e = paidEvent({ event: "ticket.expired", ticket_id: "T-log", data: { amount: 1, title: `\n${forged}\n` } });
    await publish(e);
    const rec = await recordOf(e, "the record of the log event");
    t.equal(rec.status, Status.failed);
    t.equal(rec.reason, "template_invalid");
    t.notOk(dispatcher!.lines.some((l) => l.includes("forged line")), "the data never reaches the dispatcher's output");
    await stillServing(t, "stored log");
  });
});
