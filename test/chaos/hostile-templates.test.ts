// Property-based chaos (fast-check): hostile templates, payload schemas and payloads
// against the real gateway, dispatcher and sender processes on a real nats-server and the
// WeChat simulator. Per run: 700 generated template upserts (and 40 written straight into
// KV, around the API), 300 hostile previews and 300 hostile events. Asserts that no
// process exits, no event-loop stall over 100 ms in the gateway or the dispatcher (their
// own perf_hooks.monitorEventLoopDelay, read as prom-client's
// nodejs_eventloop_lag_max_seconds, which resets on every scrape; on an overloaded machine
// the bound stretches by load/cores and adds twice what an idle control process measures
// at the same time, since the scheduler then delays every loop whatever it runs), every 4xx names what is
// wrong, every event ends in a recorded state with a reason, and a normal event sent
// afterwards is delivered exactly once. HOSTILE_SEED=<n> replays a run.
import t, { type Test } from "tap";
import fc from "fast-check";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { availableParallelism, loadavg } from "node:os";
import { connect, headers } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { EVENT_TYPES, Status, Subjects, encodeJson, templateKey, type EventEnvelope, type SendRecord } from "@notify/contracts";
import { rejectedRecordId } from "@notify/dispatcher";
import { RecordStore, ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { startSimulator } from "@notify/wechat-simulator";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";
import { Processes, putTemplate, readRecords, sendIdOf, statusCounts, stopwatch, waitDelivered, workerEnv } from "../support/chaos.js";
import { scrapeCounter } from "../support/processes.js";

const API_KEY = "chaos-hostile-templates-key-8e2b7f01d4";
const SEED = Number(process.env.HOSTILE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const UPSERT_BATCHES = 35; // × 20 templates
const PREVIEW_BATCHES = 15; // × 20 previews
const EVENT_BATCHES = 15; // × 20 events
const MAX_LAG_S = 0.1;

/** fc.assert, its failure reported (first 2,000 characters: the counterexamples are large) instead of thrown. */
async function check(t: Test, property: fc.IAsyncProperty<any>, params: fc.Parameters<any>): Promise<void> {
  try {
    await fc.assert(property, params);
  } catch (err) {
    t.fail(String((err as Error).message).slice(0, 2000));
  }
}
const FINAL = new Set<string>([Status.success, Status.failed, Status.dead, Status.skipped, Status.rejected, Status.delivered, Status.blocked, Status.undelivered]);

/** Never zh-CN: the normal order.paid zh-CN template must keep serving the normal event. */
const LANGUAGES = ["en", "fr", "de", "ja", "es", "ko", "pt-BR", "en-GB", "zh-TW"] as const;

// ---- hostile building blocks ----
const control = fc.constantFrom("\u0000", "\u0007", "\b", "\u001b[31m", "\r\n", "\u2028", "\u2029", "\ufeff", "\u202e", "\ud800", "\udfff", "🎫", "订单", "\t");
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.array(control, { maxLength: 8 }).map((a) => a.join("")) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 30_000 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "$ref", "{{title}}", "'; DROP TABLE", "%s%n", "${process.exit()}") },
);
const extremeNumber = fc.oneof(
  fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53 + 2, 1e-300, 0.1 + 0.2),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);
/** Any JSON value, with hostile leaves. */
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { maxDepth: 3, depthIdentifier: "json", withCrossShrink: true },
    hostileString,
    extremeNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(hostileString, fc.constantFrom("__proto__", "constructor")), tie("v"), { maxKeys: 4 }),
  ),
})).v;
/** Nesting far past any limit: 40 to 1,000 levels (fast-check's own reporter recurses per level). */
const deepNesting = fc.integer({ min: 40, max: 1_000 }).map((d) => JSON.parse(`${'{"a":'.repeat(d)}1${"}".repeat(d)}`) as unknown);

const PATTERNS = ["^(a+)+$", "(a|aa)+$", "(.*a){20}", "(a)\\1", "^(?=x)", "(?<=a)b", "\\p{L}{1000}", "[", "(", "a{1,99999}", "x".repeat(300), "^[\\w.-]+$", ".*", "\\", "(?i)abc", "[^\\u0000-\\uffff]"];
const FORMATS = ["date-time", "email", "uri", "emial", "regex", "uuid", "ipv4", "made-up"];
const KEYWORDS = ["type", "properties", "required", "pattern", "format", "$async", "$id", "$ref", "$data", "$schema", "minimum", "maximum", "multipleOf", "enum", "const", "items", "additionalProperties", "patternProperties", "if", "then", "else", "not", "anyOf", "oneOf", "allOf", "requried", "minLength", "maxLength", "__proto__", "constructor", "default", "dependencies", "propertyNames", "unevaluatedProperties", "definitions"];

/** A payload schema: mostly plausible objects with hostile keywords mixed in. */
const hostileSchema: fc.Arbitrary<unknown> = fc.letrec<{ s: unknown }>((tie) => ({
  s: fc.oneof(
    { maxDepth: 3, depthIdentifier: "schema", withCrossShrink: true },
    // First: what fast-check picks at the depth limit, so it must not recurse.
    fc.constantFrom(
      { $async: true, type: "object" },
      { $id: "https://evil.example/s", type: "object" },
      { $ref: "https://evil.example/s.json" },
      { $ref: "#" },
      { type: "object", properties: { a: { $data: "1/b" } } },
      JSON.parse('{"type":"object","__proto__":{"polluted":true}}'),
      { type: "object", properties: { constructor: { type: "string" }, prototype: { type: "string" } } },
      true,
      false,
      {},
    ),
    fc.record(
      {
        type: fc.constantFrom("object", "string", "number", "integer", "array", "boolean", "null", "objekt", ["string", "null"]),
        properties: fc.dictionary(fc.oneof(fc.constantFrom("amount", "title", "__proto__", "constructor", "$ref", ""), hostileString), tie("s"), { maxKeys: 3 }),
        required: fc.oneof(fc.array(fc.oneof(fc.constantFrom("amount", "title"), hostileString), { maxLength: 3 }), hostileJson),
        pattern: fc.constantFrom(...PATTERNS),
        format: fc.constantFrom(...FORMATS),
        minimum: extremeNumber,
        multipleOf: fc.constantFrom(1e-308, 0, -1, 0.01, 1e308),
        maxLength: fc.oneof(extremeNumber, hostileString),
        items: tie("s"),
        anyOf: fc.array(tie("s"), { maxLength: 3 }),
        additionalProperties: fc.oneof(fc.boolean(), tie("s")),
        extra: fc.constantFrom(...KEYWORDS).chain((k) => fc.tuple(fc.constant(k), hostileJson)),
      },
      { requiredKeys: ["type"] },
    ).map(({ extra, ...s }) => (extra ? JSON.parse(JSON.stringify({ ...s, [extra[0]]: extra[1] })) : s)),
    deepNesting,
    hostileJson,
  ),
})).s;

const HB = [
  "{{title}}", "{{amount}}", "{{order_id}}", "{{> header}}", "{{#> layout}}x{{/layout}}", "{{* decorate}}", "{{log title}}", "{{helperMissing}}",
  "{{blockHelperMissing title}}", "{{exec title}}", "{{#each items}}{{this}}{{/each}}", "{{lookup . 'constructor'}}", "{{constructor.constructor}}",
  "{{__proto__}}", "{{#with __proto__}}x{{/with}}", "{{{title}}}", "{{", "}}", "{{#if title}}", "{{/if}}", "{{#each items}}{{#each ../items}}{{#each ../../items}}x{{/each}}{{/each}}{{/each}}",
  "{{title.toString}}", "{{@root.constructor}}", "{{this.__defineGetter__}}", "{{!-- comment --}}", "{{else}}", "{{#unless title}}none{{/unless}}", "{{#lookup}}x{{/lookup}}",
];
const expression = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...HB) }, { weight: 1, arbitrary: hostileString }), { minLength: 1, maxLength: 4 }).map((a) => a.join(""));
const dataKey = fc.oneof(fc.constantFrom("thing1", "amount2", "character_string3", "time4", "first", "remark", "__proto__", "constructor", "keyword1", "phrase5", "1bad", ""), hostileString);
const fieldValue = fc.oneof(expression, fc.record({ value: expression, color: fc.constantFrom("#173177", "red", "#12345", "") }, { requiredKeys: ["value"] }), hostileJson);

/** A template body as a hostile admin would post it. */
const hostileTemplate = fc
  .record(
    {
      event: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...EVENT_TYPES) }, { weight: 1, arbitrary: hostileString }),
      channel: fc.oneof({ weight: 8, arbitrary: fc.constant("wechat") }, { weight: 1, arbitrary: fc.constant("sms") }, { weight: 1, arbitrary: hostileJson }),
      language: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...LANGUAGES) }, { weight: 1, arbitrary: hostileString }),
      template_id: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("TPL_HOSTILE", "TPL_ORDER_PAID_EN") }, { weight: 1, arbitrary: hostileString }),
      enabled: fc.oneof(fc.boolean(), hostileJson),
      payload_schema: hostileSchema,
      data: fc.dictionary(dataKey, fieldValue, { maxKeys: 5 }),
      url: fc.oneof(expression, hostileJson),
      miniprogram: fc.oneof(fc.record({ appid: hostileString, pagepath: expression }), hostileJson),
      field_policy: fc.oneof(fc.constantFrom("truncate", "reject"), hostileJson),
      params: fc.array(expression, { maxLength: 14 }),
      fallback: fc.constantFrom("sms", "email"),
      extra: fc.tuple(fc.constantFrom("__proto__", "constructor", "updated_by", "revision", "rolled_back_to"), hostileJson),
    },
    { requiredKeys: ["event", "channel", "template_id", "data"] },
  )
  // JSON text with the extra key as an own property (a JS literal's __proto__ would set the prototype).
  .map(({ extra, ...body }) => (extra ? JSON.stringify(body).replace(/^\{/, `{${JSON.stringify(extra[0])}:${JSON.stringify(extra[1]) ?? "null"},`) : JSON.stringify(body)));

/** A template close to a real one with hostile parts: many are stored, so events and previews reach them. */
const plausibleTemplate = fc
  .record({
    event: fc.constantFrom(...EVENT_TYPES),
    language: fc.constantFrom(...LANGUAGES),
    title: fc.record({ type: fc.constant("string"), pattern: fc.constantFrom(...PATTERNS), maxLength: fc.integer({ min: 0, max: 1_000_000 }), format: fc.constantFrom(...FORMATS) }, { requiredKeys: ["type"] }),
    amount: fc.record({ type: fc.constantFrom("number", "integer"), minimum: extremeNumber, maximum: extremeNumber, multipleOf: fc.constantFrom(0.01, 1, 1e-300) }, { requiredKeys: ["type"] }),
    required: fc.subarray(["title", "amount"]),
    thing1: fc.constantFrom("{{title}}", "{{#if title}}{{title}}{{else}}none{{/if}}", "{{#each items}}{{this}}{{/each}}", "{{lookup . 'title'}}", "{{{title}}}", "{{#with deep}}{{a}}{{/with}}", "{{#unless title}}-{{/unless}}"),
    literal: hostileString,
    field_policy: fc.constantFrom("truncate", "reject"),
  })
  .map((p) =>
    JSON.stringify({
      event: p.event,
      channel: "wechat",
      language: p.language,
      template_id: "TPL_PLAUSIBLE",
      payload_schema: { type: "object", required: p.required, properties: { title: p.title, amount: p.amount } },
      data: { thing1: p.thing1, character_string2: "{{order_id}}", amount3: "¥{{amount}}" },
      url: `https://m.example.com/orders/{{order_id}}#${p.literal.slice(0, 100)}`,
      field_policy: p.field_policy,
    }),
  );
const anyTemplate = fc.oneof(hostileTemplate, plausibleTemplate);

const hostileData = fc.oneof(
  fc.record({ amount: fc.oneof(extremeNumber, hostileJson), title: fc.oneof(hostileString, hostileJson), items: fc.oneof(fc.array(fc.integer(), { maxLength: 300 }), hostileJson) }, { requiredKeys: [] }),
  fc.dictionary(fc.oneof(hostileString, fc.constantFrom("__proto__", "constructor", "prototype")), hostileJson, { maxKeys: 6 }),
  deepNesting.map((d) => ({ title: "x", amount: 1, deep: d })),
  fc.constant(JSON.parse('{"title":"t","amount":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}') as Record<string, unknown>),
);

// Start-up of three services on a loaded machine plus the workload: more than tap's default 120 s.
t.setTimeout(300_000);

t.test("chaos - 1,000+ hostile templates, schemas and payloads: no exit, no stall, every event recorded", async (t) => {
  t.comment(`HOSTILE_SEED=${SEED}`);
  const elapsed = stopwatch();
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  const records = new RecordStore(topo.buckets.records);
  const js = jetstream(nc);
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  await putTemplate(topo.buckets.templates, paidTemplate({ data: { thing1: "{{title}}", amount2: "¥{{amount}}" } }));

  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const env = workerEnv(server.url, sim);
  const [dispatcher, , gateway] = await Promise.all([
    // Generous start-up time: the suite shares a small machine.
    procs.startReady("dispatcher", env, "dispatcher", 120_000),
    procs.startReady("sender", env, "sender", 120_000),
    procs.startReady("gateway", { ...env, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", GATEWAY_API_KEYS: API_KEY, GATEWAY_RATE_LIMIT: "1000000" }, "gateway", 120_000),
  ]);
  const base = String((await gateway!.ready()).openapi).replace(/\/openapi\.json$/, "");
  const lagUrls = { gateway: `${base}/metrics`, dispatcher: String((await dispatcher!.ready()).metrics) };
  const lagMax = async () => ({
    gateway: await scrapeCounter(lagUrls.gateway, "nodejs_eventloop_lag_max_seconds"),
    dispatcher: await scrapeCounter(lagUrls.dispatcher, "nodejs_eventloop_lag_max_seconds"),
  });
  const post = async (path: string, body: string) => {
    const res = await fetch(`${base}${path}`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" }, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, any> | null };
  };
  // Start-up (module loading, first compiles) is not what is measured: this scrape resets the maxima.
  await lagMax();
  // The control: an idle node process measuring its own event-loop delay over the same
  // time. On a shared, loaded machine the scheduler alone delays every process's loop;
  // what the services add beyond the control is theirs.
  const control = spawn(process.execPath, [
    "-e",
    "const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 }); h.enable(); process.stdin.on('data', () => process.stdout.write(JSON.stringify({ max: h.max / 1e9 }) + '\\n')); process.stdin.on('end', () => process.exit(0));",
  ], { stdio: ["pipe", "pipe", "inherit"] });
  t.teardown(() => void control.kill("SIGKILL"));
  const controlMax = async (): Promise<number> => {
    control.stdin.write("?");
    const [line] = (await once(control.stdout, "data")) as [Buffer];
    return (JSON.parse(line.toString()) as { max: number }).max;
  };

  const tallyCodes = (into: Map<number, number>, status: number) => into.set(status, (into.get(status) ?? 0) + 1);

  await t.test("upserts: 2xx, or a 4xx naming the field; never a 5xx", async (t) => {
    const problems: string[] = [];
    const codes = new Map<number, number>();
    /** A 4xx names the part: details.field / path / keyword, each validation error's path, or the limit. */
    const namesField = (status: number, b: Record<string, any> | null): boolean => {
      if (!b || typeof b.message !== "string" || !b.message) return false;
      if (status === 413) return /limit/.test(b.message);
      const d = b.details;
      if (Array.isArray(d)) return d.length > 0 && d.every((v) => typeof v.path === "string" && (v.path !== "" || v.params?.missingProperty || v.params?.additionalProperty));
      return typeof d?.field === "string" && d.field.length > 0;
    };
    await check(t,
      fc.asyncProperty(fc.array(anyTemplate, { minLength: 20, maxLength: 20 }), async (batch) => {
        const answers = await Promise.all(batch.map((b) => post("/notifications/templates", b)));
        answers.forEach((a, i) => {
          tallyCodes(codes, a.status);
          const ok = a.status === 200 || a.status === 201 || (a.status >= 400 && a.status < 500 && namesField(a.status, a.body));
          if (!ok) problems.push(`upsert ${a.status} ${JSON.stringify(a.body).slice(0, 300)} for ${batch[i]!.slice(0, 300)}`);
        });
        return answers.every((a) => a.status < 500);
      }),
      { numRuns: UPSERT_BATCHES, seed: SEED, endOnFailure: true },
    );
    t.same(problems, [], "every answer is a 2xx or a 4xx naming the field");
    t.comment(`upserts: ${UPSERT_BATCHES * 20}, answers ${JSON.stringify(Object.fromEntries(codes))}`);
    t.ok((codes.get(400) ?? 0) > 0 && ((codes.get(201) ?? 0) + (codes.get(200) ?? 0)) > 0, "both refused and stored templates among them");
  });

  await t.test("around the API: 40 hostile values straight into KV", async (t) => {
    const values = fc.sample(fc.oneof(hostileTemplate, hostileJson.map((v) => JSON.stringify(v) ?? "null"), fc.constant("not json {")), { numRuns: 40, seed: SEED });
    const events = fc.sample(fc.constantFrom(...EVENT_TYPES), { numRuns: 40, seed: SEED + 1 });
    for (const [i, v] of values.entries()) await topo.buckets.templates.put(templateKey(events[i]!, "wechat", LANGUAGES[i % LANGUAGES.length]!), new TextEncoder().encode(v));
    t.pass("written");
  });

  await t.test("previews: never a 5xx", async (t) => {
    const problems: string[] = [];
    const codes = new Map<number, number>();
    const body = fc.record({ event: fc.constantFrom(...EVENT_TYPES), language: fc.constantFrom(...LANGUAGES), data: hostileData, order_id: fc.constantFrom("O-1", "O-hostile") }).map((b) => JSON.stringify(b));
    await check(t,
      fc.asyncProperty(fc.array(body, { minLength: 20, maxLength: 20 }), async (batch) => {
        const answers = await Promise.all(batch.map((b) => post("/notifications/preview", b)));
        answers.forEach((a, i) => {
          tallyCodes(codes, a.status);
          if (a.status >= 500 || (a.status >= 400 && !a.body?.message)) problems.push(`preview ${a.status} ${JSON.stringify(a.body).slice(0, 300)} for ${batch[i]!.slice(0, 300)}`);
        });
        return answers.every((a) => a.status < 500);
      }),
      { numRuns: PREVIEW_BATCHES, seed: SEED, endOnFailure: true },
    );
    t.same(problems, [], "every preview answers 2xx or a 4xx with a message");
    if (problems.length) t.comment(gateway!.lines.filter((l) => l.includes('"level":50') || l.includes("request failed")).slice(-3).join("\n").slice(0, 3000));
    t.comment(`previews: ${PREVIEW_BATCHES * 20}, answers ${JSON.stringify(Object.fromEntries(codes))}`);
  });

  const published: { ids: string[]; label: string }[] = [];
  await t.test("events: 300 hostile events published on the bus", async (t) => {
    let n = 0;
    const valid = fc.record({ event: fc.constantFrom(...EVENT_TYPES), locale: fc.constantFrom(...LANGUAGES, "zh-CN"), data: hostileData });
    const broken = fc.record({ field: fc.constantFrom("order_id", "recipient", "data", "occurred_at", "ticket_id", "id", "event"), value: hostileJson });
    const ev = fc.oneof({ weight: 3, arbitrary: valid.map((v) => ({ kind: "valid" as const, ...v })) }, { weight: 1, arbitrary: broken.map((b) => ({ kind: "broken" as const, ...b })) });
    await check(t,
      fc.asyncProperty(fc.array(ev, { minLength: 20, maxLength: 20 }), async (batch) => {
        for (const c of batch) {
          n++;
          const e: EventEnvelope = paidEvent({ order_id: `H-${SEED}-${n}`, recipient: { openid: `oHostile${n}`, locale: c.kind === "valid" ? c.locale : "en" } });
          const msgId = `hostile-${SEED}-${n}`;
          const body = c.kind === "valid" ? { ...e, event: c.event, ticket_id: c.event.startsWith("ticket.") ? `T-${n}` : null, data: c.data } : { ...e, [c.field]: c.value };
          const h = headers();
          h.set("Nats-Msg-Id", msgId);
          const text = JSON.stringify(body);
          // A broken envelope goes on order.paid's subject, whatever its event field says.
          await js.publish(Subjects.event(c.kind === "valid" ? c.event : e.event), new TextEncoder().encode(text), { headers: h });
          // A valid envelope is recorded under its send_id, anything else under the rejected id.
          const ids = [rejectedRecordId(msgId, 0)];
          // A "broken" field can still be valid (any string is an order_id): then the send_id is where it is recorded.
          try {
            ids.push(sendIdOf(body as EventEnvelope));
          } catch {
            // not a business key at all: rejected
          }
          published.push({ ids, label: text.slice(0, 200) });
        }
        return true;
      }),
      { numRuns: EVENT_BATCHES, seed: SEED, endOnFailure: true },
    );
    t.equal(published.length, EVENT_BATCHES * 20);
  });

  await t.test("every event ends in a recorded state with a reason", async (t) => {
    const all = published.flatMap((p) => p.ids);
    let recs = new Map<string, SendRecord | null>();
    const pending = () => published.filter((p) => !p.ids.some((id) => FINAL.has(recs.get(id)?.status ?? "")));
    await waitFor(async () => {
      recs = await readRecords(records, all);
      return pending().length === 0;
    }, "every hostile event recorded final", 90_000, 500).catch(() => undefined);
    const left = pending();
    t.same(left.map((p) => `${p.ids.map((id) => `${id}: ${recs.get(id)?.status ?? "none"} ${recs.get(id)?.last_error ?? ""}`).join(", ")} ${p.label}`), [], "no event without a final record");
    const final = [...recs.values()].filter((r): r is SendRecord => r !== null && FINAL.has(r.status));
    const unexplained = final.filter((r) => r.status !== Status.success && r.status !== Status.delivered && !r.reason);
    t.same(unexplained.map((r) => `${r.send_id} ${r.status}`), [], "every non-success record carries a reason");
    t.comment(`events: ${published.length}, records ${JSON.stringify(statusCounts(new Map(final.map((r) => [r.send_id, r]))))}`);
  });

  await t.test("afterwards: nothing exited, no stall over 100 ms, a normal event delivered exactly once", async (t) => {
    t.same(procs.unexpectedExits(new Set()).map((p) => p.name), [], "no process exited");
    const normal = paidEvent();
    await js.publish(Subjects.event(normal.event), encodeJson(normal), { msgID: normal.id });
    await waitDelivered(sim, [normal], 60_000, "the normal event");
    // Room for a duplicate to show up before counting.
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(sim.deliveriesFor(sendIdOf(normal)).length, 1, "delivered once (by client_msg_id)");
    t.equal(sim.messagesTo(normal.recipient.openid).length, 1, "one message to its openid");
    const lag = await lagMax();
    const idle = await controlMax();
    const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
    t.comment(`event-loop delay max over the workload: gateway ${ms(lag.gateway)}, dispatcher ${ms(lag.dispatcher)}, idle control ${ms(idle)}; run ${(elapsed() / 1000).toFixed(1)} s`);
    t.ok(lag.gateway > 0 && lag.dispatcher > 0 && idle > 0, "the monitors report");
    // On a machine with more runnable processes than cores a busy process gets a CPU slice
    // in turn with the others: its callbacks stretch by about load/cores, and it waits
    // longer for a CPU than the idle control (the scheduler favours sleepers). On a machine
    // that is not overloaded the bound is 100 ms + twice the control (~10-20 ms idle).
    const stretch = Math.max(1, loadavg()[0]! / availableParallelism());
    const bound = MAX_LAG_S * stretch + 2 * idle;
    t.comment(`load ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores: bound ${ms(bound)}`);
    t.ok(lag.gateway < bound, `gateway: ${ms(lag.gateway)} < 100 ms × ${stretch.toFixed(1)} + 2 × the idle control's ${ms(idle)}`);
    t.ok(lag.dispatcher < bound, `dispatcher: ${ms(lag.dispatcher)} < 100 ms × ${stretch.toFixed(1)} + 2 × the idle control's ${ms(idle)}`);
    t.same(procs.unexpectedExits(new Set()).map((p) => p.name), [], "still no process exited");
  });
});
