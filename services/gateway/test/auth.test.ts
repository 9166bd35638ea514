import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import helmet from "helmet";
import t from "tap";
import { connect } from "@nats-io/transport-node";
import { ConfigError } from "@notify/config";
import { encodeJson } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { ensureTopology } from "@notify/nats";
import { HELMET_OPTIONS, PROTECTED_PREFIX, buildApp, createKeyVerifier, keyIdOf, loadGatewayConfig } from "@notify/gateway";
import { API_KEY, AUTH, appFor, settings, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);

/** Fills route parameters with values of the right shape. */
const PARAM_VALUES: Record<string, string> = { seq: "1", event: "order.paid", channel: "wechat", language: "zh-CN", send_id: "snd_00000000000000000000000000000000" };
const concrete = (url: string) => url.replace(/:(\w+)/g, (_m, name: string) => PARAM_VALUES[name] ?? "x");

t.test("gateway - every /notifications/* route answers 401 without a key (route table walk)", async (t) => {
  const app = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings() });
  t.teardown(() => app.close());
  const routes: { method: string; url: string }[] = [];
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });
  await app.ready();

  const protectedRoutes = routes.filter((r) => r.url === PROTECTED_PREFIX || r.url.startsWith(`${PROTECTED_PREFIX}/`));
  t.ok(protectedRoutes.length >= 12, `the walk found ${protectedRoutes.length} /notifications routes`);
  for (const seed of ["POST /notifications/templates", "GET /notifications/templates", "POST /notifications/preview"]) {
    t.ok(protectedRoutes.some((r) => `${r.method} ${r.url}` === seed), `the table holds ${seed}`);
  }
  for (const r of protectedRoutes) {
    const url = concrete(r.url);
    const method = r.method as "GET";
    const none = await app.inject({ method, url, payload: r.method === "POST" ? {} : undefined });
    t.equal(none.statusCode, 401, `${r.method} ${r.url} without a key`);
    if (r.method !== "HEAD") {
      t.equal(none.json().error, "unauthorized");
      t.match(none.headers["www-authenticate"], /^Bearer/);
    }
    const wrong = await app.inject({ method, url, headers: { authorization: `Bearer ${API_KEY}x` } });
    t.equal(wrong.statusCode, 401, `${r.method} ${r.url} with an unknown key`);
    const basic = await app.inject({ method, url, headers: { authorization: `Basic ${Buffer.from(`u:${API_KEY}`).toString("base64")}` } });
    t.equal(basic.statusCode, 401, `${r.method} ${r.url} with another scheme`);
    const ok = await app.inject({ method, url, headers: AUTH });
    t.not(ok.statusCode, 401, `${r.method} ${r.url} with a key gets past auth (${ok.statusCode})`);
  }
  const open = routes.filter((r) => !protectedRoutes.includes(r)).map((r) => r.url);
  for (const u of ["/healthz", "/readyz", "/metrics", "/openapi.json"]) t.ok(open.includes(u), `${u} is registered outside /notifications`);
});

t.test("gateway - probes, metrics, the OpenAPI document and Swagger UI need no key", async (t) => {
  const app = await appFor(t, nats);
  const health = await app.inject({ method: "GET", url: "/healthz" });
  t.same(health.json(), { status: "ok" });
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { status: "ready", checks: { nats: true, buckets: true, sendlog: { db: "off" } } });

  await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH });
  const metrics = await app.inject({ method: "GET", url: "/metrics" });
  t.equal(metrics.statusCode, 200);
  t.match(metrics.headers["content-type"], /^text\/plain/);
  t.match(metrics.body, /gateway_http_requests_total\{method="GET",route="\/notifications\/templates",status="200"/, "requests counted by route pattern");
  t.match(metrics.body, /notifications_dlq_depth\{service="gateway"\} 0/, "DLQ depth refreshed on scrape");

  const doc = await app.inject({ method: "GET", url: "/openapi.json" });
  t.equal(doc.statusCode, 200);
  t.equal(doc.json().openapi, "3.0.3");
  const ui = await app.inject({ method: "GET", url: "/docs/" });
  t.equal(ui.statusCode, 200);
  t.match(ui.headers["content-type"], /text\/html/);
});

t.test("gateway - security headers on every answer", async (t) => {
  const app = await appFor(t, nats);
  const res = await app.inject({ method: "GET", url: "/healthz" });
  t.equal(res.headers["x-content-type-options"], "nosniff");
  t.match(res.headers["content-security-policy"], /default-src 'self'/);
  t.notMatch(res.headers["content-security-policy"], /upgrade-insecure-requests/, "plain HTTP stays usable for Swagger UI");
  t.ok(res.headers["x-frame-options"]);
});

t.test("gateway - the security headers are exactly what helmet's middleware writes, on every kind of answer", async (t) => {
  // The reference: helmet itself on a bare node:http server, with the gateway's options.
  const mw = helmet(HELMET_OPTIONS);
  const server = createServer((req, res) => mw(req, res, () => res.end("ok")));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const ref = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  const expected: Record<string, string> = {};
  for (const [k, v] of ref.headers) if (!["content-length", "date", "connection", "keep-alive", "content-type", "transfer-encoding"].includes(k)) expected[k] = v;
  t.ok(Object.keys(expected).length >= 10, `helmet sets ${Object.keys(expected).length} headers`);

  const app = await appFor(t, nats);
  const answers = {
    "200 probe": await app.inject({ method: "GET", url: "/healthz" }),
    "200 list": await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH }),
    "401": await app.inject({ method: "GET", url: "/notifications/templates" }),
    "400": await app.inject({ method: "POST", url: "/notifications/preview", headers: { ...AUTH, "content-type": "application/json" }, payload: "{" }),
    "404": await app.inject({ method: "GET", url: "/nowhere" }),
    "docs": await app.inject({ method: "GET", url: "/docs/" }),
  };
  for (const [name, res] of Object.entries(answers)) {
    for (const [k, v] of Object.entries(expected)) t.equal(res.headers[k], v, `${name}: ${k}`);
  }
});

t.test("gateway - config refuses to start without keys unless GATEWAY_AUTH=off", async (t) => {
  const err = (() => {
    try {
      loadGatewayConfig({});
    } catch (e) {
      return e;
    }
    return null;
  })();
  t.ok(err instanceof ConfigError);
  t.same((err as ConfigError).variables, ["GATEWAY_API_KEYS"]);
  t.match((err as Error).message, /GATEWAY_API_KEYS/);

  const off = loadGatewayConfig({ GATEWAY_AUTH: "off" });
  t.equal(off.GATEWAY_AUTH, "off");
  t.same(off.GATEWAY_API_KEYS, []);

  const c = loadGatewayConfig({ GATEWAY_API_KEYS: " k1 , k2,,", NATS_URL: "nats://a:4222,nats://b:4222", NATS_REPLICAS: "3" });
  t.same(c.GATEWAY_API_KEYS, ["k1", "k2"]);
  t.equal(c.GATEWAY_HOST, "0.0.0.0");
  t.equal(c.GATEWAY_PORT, 3000);
  t.equal(c.GATEWAY_RATE_LIMIT, 100_000, "generous default so load tests are not throttled");
  t.same(c.NATS_URL, ["nats://a:4222", "nats://b:4222"]);
  t.equal(c.NATS_REPLICAS, 3);
  t.equal(c.LOG_LEVEL, "info");

  t.throws(() => loadGatewayConfig({ GATEWAY_API_KEYS: "k", GATEWAY_PORT: "http" }), /GATEWAY_PORT/);
  t.throws(() => loadGatewayConfig({ GATEWAY_API_KEYS: "k", GATEWAY_AUTH: "maybe" }), /GATEWAY_AUTH/);
  const secret = (() => {
    try {
      loadGatewayConfig({ GATEWAY_API_KEYS: "k", GATEWAY_RATE_LIMIT: "0" });
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  })();
  t.match(secret, /GATEWAY_RATE_LIMIT/);
});

t.test("gateway - GATEWAY_AUTH=off opens /notifications/* for local use", async (t) => {
  const app = await appFor(t, nats, { settings: { auth: "off", apiKeys: [] } });
  const res = await app.inject({ method: "GET", url: "/notifications/templates" });
  t.equal(res.statusCode, 200);
  const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json();
  t.equal(doc.paths["/notifications/templates"].get.security, undefined, "no security requirement documented");
});

t.test("gateway - key check hashes both sides and accepts only configured keys", async (t) => {
  const v = createKeyVerifier(["alpha-key-123", "beta-key-456"]);
  t.type(v.verify("Bearer alpha-key-123"), "string");
  t.type(v.verify("bearer   beta-key-456 "), "string", "scheme is case-insensitive, spaces tolerated");
  t.not(v.verify("Bearer alpha-key-123"), v.verify("Bearer beta-key-456"), "keys get distinct ids");
  t.notMatch(v.verify("Bearer alpha-key-123")!, /alpha/, "the id does not reveal the key");
  t.equal(v.verify("Bearer alpha-key-12"), null, "a prefix is not a key");
  t.equal(v.verify("Bearer alpha-key-1234"), null);
  t.equal(v.verify("alpha-key-123"), null, "the scheme is required");
  t.equal(v.verify(undefined), null);
  t.equal(v.verify("Bearer "), null);
  t.equal(createKeyVerifier([]).verify("Bearer anything"), null, "no keys: nothing passes");
});

t.test("gateway - a request's key is checked once, whoever asks (rate limit, then auth)", async (t) => {
  const real = createKeyVerifier(["alpha-key-123"]);
  let calls = 0;
  const counting = { enabled: true, verify: (a: string | undefined) => (calls++, real.verify(a)) };
  const request = (authorization?: string) => ({ headers: { authorization }, keyCheck: null }) as unknown as Parameters<typeof keyIdOf>[0];
  const good = request("Bearer alpha-key-123");
  const id = keyIdOf(good, counting);
  t.type(id, "string");
  t.equal(keyIdOf(good, counting), id);
  t.equal(calls, 1, "the second question is answered from the request");
  const bad = request("Bearer alpha-key-124");
  t.equal(keyIdOf(bad, counting), null);
  t.equal(keyIdOf(bad, counting), null, "a refusal is remembered too");
  t.equal(calls, 2);
  t.equal(keyIdOf(request("Bearer alpha-key-123"), counting), id, "a new request is checked afresh");
  t.equal(calls, 3);
});

t.test("gateway - rate limit per key answers 429 with a reason", async (t) => {
  const app = await appFor(t, nats, { settings: { rateLimitPerMinute: 3 } });
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH })).statusCode, 200);
  const limited = await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH });
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().error, "too_many_requests");
  t.ok(limited.headers["retry-after"], "says when to retry");
  const other = await app.inject({ method: "GET", url: "/notifications/templates", headers: { authorization: "Bearer second-key-9a8b7c6d5e4f" } });
  t.equal(other.statusCode, 200, "another key has its own budget");
});

t.test("gateway - logs carry requests and status codes but never a key; 5xx hide internals", async (t) => {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ name: "gateway", level: "debug" }, dest);
  const app = await appFor(t, nats, { log });
  await app.inject({ method: "GET", url: "/notifications/templates", headers: AUTH });
  await app.inject({ method: "GET", url: "/notifications/templates", headers: { authorization: "Bearer not-a-key-but-secret-looking" } });
  await app.inject({ method: "GET", url: "/notifications/templates?token=query-secret-77", headers: AUTH });
  // An admin searching the send log for one traveller.
  await app.inject({ method: "GET", url: "/notifications/sends?openid=oTRAVELLER-88&status=failed", headers: AUTH });
  // A malformed body: V8's own message would quote the start of it (here a phone number).
  const malformed = await app.inject({ method: "POST", url: "/notifications/preview", headers: { ...AUTH, "content-type": "application/json" }, payload: '{"phone":+8613812345678}' });
  t.equal(malformed.statusCode, 400);
  t.match(malformed.json().message, /^the body is not valid JSON: Unexpected token/, "the reason names the place");
  t.notMatch(malformed.body, "861381", "not the text");
  // A value written around the gateway's validation: the list cannot decode it.
  const key = "ticket.expired.sms.xx";
  await nats.topology.buckets.templates.put(key, encodeJson("x").slice(1));
  t.teardown(() => nats.topology.buckets.templates.purge(key));
  // (Lists come from the watched cache, which skips it; its history still decodes every revision.)
  const broken = await app.inject({ method: "GET", url: "/notifications/templates/ticket.expired/sms/xx/history", headers: AUTH });
  t.equal(broken.statusCode, 500);
  t.same(broken.json(), { error: "internal_error", message: "internal server error" }, "no stack, no cause, no internals");

  const all = lines.join("\n");
  t.notMatch(all, API_KEY, "the bearer key never reaches a log line");
  t.notMatch(all, "not-a-key-but-secret-looking", "nor an unknown one");
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(parsed.some((l) => l.msg === "request" && l.status === 401), "status codes are logged");
  t.notMatch(all, "query-secret-77", "a secret in the query string neither");
  t.notMatch(all, "oTRAVELLER-88", "nor the openid an admin searched for");
  t.ok(parsed.some((l) => l.msg === "request" && String(l.url).includes("openid=[redacted]&status=failed")), "the search is still logged, without whom");
  t.notMatch(all, "861381", "nor a phone number from a malformed body");
  t.ok(parsed.some((l) => l.msg === "request" && l.status === 400 && typeof l.reason === "string" && l.reason.startsWith("the body is not valid JSON")), "the 400's reason is logged");
  const requestLines = parsed.filter((l) => l.msg === "request");
  t.ok(requestLines.length >= 4 && requestLines.every((l) => typeof l.reqId === "string" && l.reqId !== ""), "every request line carries its request id");
  t.ok(parsed.some((l) => l.msg === "request" && l.url === "/notifications/templates/ticket.expired/sms/xx/history"), "request parameters are logged");
  const failed = parsed.find((l) => l.msg === "request failed");
  t.ok(failed, "the 5xx is logged");
  t.equal(failed?.level, "error");
  t.ok((failed?.err as { stack?: string }).stack, "with its stack");
});

t.test("gateway - NATS gone: readyz 503 and routes answer 503 without internals", async (t) => {
  const nc = await connect({ servers: nats.server.url, noAsyncTraces: true });
  const topology = await ensureTopology(nc);
  const app = buildApp({ nc, topology, settings: settings() });
  t.teardown(() => app.close());
  await app.ready();
  await nc.close();
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 503);
  t.same(ready.json(), { status: "not_ready", checks: { nats: false, buckets: false, sendlog: { db: "off" } } });
  // (The template list is served from the in-memory cache, so a KV read stands in here.)
  const res = await app.inject({ method: "GET", url: "/notifications/templates/order.paid/wechat/zh-CN", headers: AUTH });
  t.equal(res.statusCode, 503);
  t.same(res.json(), { error: "service_unavailable", message: "the message bus is unavailable; retry later" });
});
