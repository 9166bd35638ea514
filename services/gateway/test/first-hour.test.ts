import { Writable } from "node:stream";
import t from "tap";
import { createLogger } from "@notify/log";
import { AUTH, API_KEY, appFor, startNats } from "./fixtures/helpers.js";

// What a newcomer meets first: the bare address, a body too large, and the log.

// A deprecated Fastify option prints a warning on every start that operators would chase;
// Fastify warns once per process, so listen before the first app is built.
const warnings: string[] = [];
process.on("warning", (w: Error & { code?: string }) => warnings.push(`${w.code ?? w.name}: ${w.message}`));
const nats = await startNats(t);

/** A real pino logger whose JSON lines are kept for assertions. */
function capturedLog(): { lines: () => Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  return { log: createLogger({ name: "gateway", level: "info" }, sink), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

t.test("gateway - GET / redirects to the Swagger UI, without a key", async (t) => {
  const app = await appFor(t, nats);
  const res = await app.inject({ method: "GET", url: "/" });
  t.equal(res.statusCode, 302);
  t.equal(res.headers.location, "/docs");
  t.notOk(Object.keys((await app.inject({ method: "GET", url: "/openapi.json" })).json().paths).includes("/"), "not an API path in the OpenAPI document");
});

t.test("gateway - a body over the limit answers 413 stating the limit", async (t) => {
  const app = await appFor(t, nats);
  const big = await app.inject({ method: "POST", url: "/notifications/templates", headers: { ...AUTH, "content-type": "application/json" }, payload: JSON.stringify({ blob: "x".repeat(300 * 1024) }) });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error, "payload_too_large");
  t.match(big.json().message, /limit here is 262144 bytes/);
});

t.test("gateway - one log line per request: method, URL, status, time, and a 4xx's reason; never the key", async (t) => {
  const { log, lines } = capturedLog();
  const app = await appFor(t, nats, { log });
  await app.inject({ method: "GET", url: "/healthz" });
  await app.inject({ method: "GET", url: "/notifications/sends/nope?x=1", headers: AUTH });
  await app.inject({ method: "GET", url: "/notifications/templates" });
  const requests = lines().filter((l) => l.msg === "request");
  t.equal(requests.length, 3, "one line each");
  t.equal(lines().filter((l) => l.msg === "incoming request" || l.msg === "request completed").length, 0, "no start/finish pairs");
  t.match(requests[0], { method: "GET", url: "/healthz", status: 200, level: "info" });
  t.type(requests[0]!.ms, "number");
  t.notOk("reason" in requests[0]!, "a success carries no reason");
  t.match(requests[1], { method: "GET", url: "/notifications/sends/nope?x=1", status: 404 });
  t.type(requests[1]!.reason, "string", "the 404's reason is logged");
  t.match(requests[2], { status: 401, reason: /key|auth|bearer/i });
  t.notMatch(JSON.stringify(lines()), API_KEY, "the key never reaches the log");
  await new Promise((r) => setImmediate(r));
  t.same(warnings.filter((w) => /^FST/.test(w)), [], "building the gateway raises no Fastify deprecation warning");
});
