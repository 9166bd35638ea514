// A JSON body is validated as sent: a value of the wrong JSON type is a 400 naming the
// field, never coerced (Fastify's default would store "1" as 1, 123 as "123", ["x"] as
// "x"). Query strings still carry numbers as text. Real gateway, real nats-server, HTTP.
import t from "tap";
import fc from "fast-check";
import { paidEvent } from "../../../test/support/fixtures.js";
import { API_KEY, appFor, paidTemplate, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);

type Kind = "string" | "number" | "boolean" | "null" | "array" | "object";
const values: Record<Kind, fc.Arbitrary<unknown>> = {
  string: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("1", "true", "", "null")),
  number: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
  boolean: fc.boolean(),
  null: fc.constant(null),
  // A one-element array is what `coerceTypes: "array"` would unwrap.
  array: fc.oneof(fc.array(fc.string({ maxLength: 4 }), { minLength: 1, maxLength: 1 }), fc.array(fc.integer(), { maxLength: 2 })),
  object: fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
};
const wrong = (right: Kind[]): fc.Arbitrary<unknown> => fc.oneof(...(Object.keys(values) as Kind[]).filter((k) => !right.includes(k)).map((k) => values[k]));

/** Sets `path` (dotted) in a deep copy of `body`. */
function withValue(body: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  const keys = path.split(".");
  let at: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[keys.at(-1)!] = value;
  return copy;
}

t.test("gateway - bodies are not coerced; query strings are", async (t) => {
  const app = await appFor(t, nats);
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  const auth = { authorization: `Bearer ${API_KEY}` };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { message?: string; details?: { in: string; path: string }[] } };
  };
  const one = `${base}/notifications/templates/order.paid/wechat/zh-CN`;

  await t.test("the values Fastify's default would have coerced", async (t) => {
    for (const [path, value, field] of [
      ["template_id", 123, "/template_id"],
      ["enabled", "true", "/enabled"],
      ["enabled", 1, "/enabled"],
      ["language", ["zh-CN"], "/language"],
      ["data.thing1", 5, "/data/thing1"],
      ["url", null, "/url"],
    ] as const) {
      const r = await post("/notifications/templates", withValue(paidTemplate(), path, value));
      t.equal(r.status, 400, `${path}: ${JSON.stringify(value)} is refused`);
      t.ok(r.body.details?.some((d) => d.in === "body" && d.path.startsWith(field)) || r.body.message?.includes(field.slice(1).replace("/", ".")), `the answer names ${field}: ${r.body.message}`);
    }
    const rb = await post("/notifications/templates/order.paid/wechat/zh-CN/rollback", { revision: "1" });
    t.equal(rb.status, 400, 'rollback {"revision":"1"} is refused');
    t.match(rb.body.message, /revision/);
    t.equal((await fetch(one, { headers: auth })).status, 404, "nothing was stored");
  });

  await t.test("property: any wrong-typed value in a template body is a 400 naming the field, nothing stored", async (t) => {
    const fields: [string, Kind[]][] = [
      ["event", ["string"]],
      ["channel", ["string"]],
      ["language", ["string"]],
      ["template_id", ["string"]],
      ["enabled", ["boolean"]],
      ["url", ["string"]],
      ["payload_schema", ["object"]],
      ["data", ["object"]],
      ["data.thing1", ["string", "object"]],
      ["data.amount2.color", ["string"]],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...fields).chain(([path, right]) => fc.tuple(fc.constant(path), wrong(right))),
        async ([path, value]) => {
          const r = await post("/notifications/templates", withValue(paidTemplate(), path, value));
          const field = `/${path.replaceAll(".", "/")}`;
          return r.status === 400 && r.body.details?.some((d) => d.in === "body" && d.path.startsWith(field)) === true;
        },
      ),
      { numRuns: 150 },
    );
    t.equal((await fetch(one, { headers: auth })).status, 404, "nothing was stored");
  });

  await t.test("an event over HTTP is held to the same types as one from NATS", async (t) => {
    for (const [path, value] of [
      ["order_id", 123],
      ["recipient.openid", 5],
      ["recipient.locale", ["zh-CN"]],
      ["id", true],
    ] as const) {
      const r = await post("/notifications/events", withValue(paidEvent() as unknown as Record<string, unknown>, path, value));
      t.equal(r.status, 400, `${path}: ${JSON.stringify(value)} is refused`);
      t.ok(r.body.details?.some((d) => d.path === `/${path.replace(".", "/")}`), `names /${path.replace(".", "/")}`);
    }
    t.equal((await post("/notifications/events", paidEvent())).status, 202, "the same event with its own types is accepted");
  });

  await t.test("query strings and paths still carry numbers as text", async (t) => {
    const r = await fetch(`${base}/notifications/dlq?limit=5`, { headers: auth });
    t.equal(r.status, 200, "?limit=5 is the integer 5");
    const bad = await fetch(`${base}/notifications/dlq?limit=five`, { headers: auth });
    t.equal(bad.status, 400, "?limit=five is a 400");
  });
});
