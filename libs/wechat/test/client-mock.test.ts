import t, { type Test } from "tap";
import { MockAgent } from "undici";
import { createLogger } from "@notify/log";
import { WeChatClient, createWeChatClient, type CallCode, type WeChatClientOptions } from "@notify/wechat";

const BASE = "https://api.weixin.qq.com";
const SECRET = "mock-app-secret-0123";
const SEND = (p: string) => p.startsWith("/cgi-bin/message/template/send?access_token=");
const payload = { touser: "oUser", template_id: "TPL", client_msg_id: "snd_1", data: { thing1: { value: "x" } } };

function setup(t: Test, opts: Partial<WeChatClientOptions> = {}) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.teardown(() => agent.close());
  const pool = agent.get(BASE);
  const lines: string[] = [];
  const log = createLogger({ name: "test", level: "trace" }, { write: (s: string) => void lines.push(s) });
  const calls: [CallCode, string][] = [];
  const client = new WeChatClient({ appId: "wx-mock", appSecret: SECRET, dispatcher: agent, log, onCall: (code, _ms, ep) => calls.push([code, ep]), ...opts });
  t.teardown(() => client.close());
  return { agent, pool, client, lines, calls };
}

function token(pool: ReturnType<MockAgent["get"]>, tok = "TOKEN-A") {
  return pool.intercept({ path: "/cgi-bin/stable_token", method: "POST" }).reply(200, { access_token: tok, expires_in: 7200 });
}

t.test("wechat client (mock) - success carries the msgid, 64-bit ids keep every digit", async (t) => {
  const { pool, client, calls } = setup(t);
  token(pool);
  let sentBody = "";
  pool.intercept({ path: SEND, method: "POST" }).reply((req) => {
    sentBody = String(req.body);
    return { statusCode: 200, data: '{"errcode":0,"errmsg":"ok","msgid":1888431893386838016}', responseOptions: { headers: { "content-type": "application/json" } } };
  });
  const r = await client.sendTemplate(payload);
  t.match(r, { kind: "success", errcode: 0, code: "0", msgid: "1888431893386838016" });
  t.ok(r.durationMs >= 0);
  t.same(JSON.parse(sentBody), payload, "the payload, client_msg_id included, is the body");
  t.same(calls, [[0, "token"], [0, "send"]]);
});

t.test("wechat client (mock) - errcodes become retryable, permanent or quota", async (t) => {
  const { pool, client } = setup(t);
  token(pool);
  const cases: [number, string][] = [
    [-1, "retryable"],
    [45011, "retryable"],
    [43004, "permanent"],
    [40003, "permanent"],
    [45009, "quota"],
    [61234, "retryable"],
  ];
  for (const [errcode, kind] of cases) {
    pool.intercept({ path: SEND, method: "POST" }).reply(200, { errcode, errmsg: "x" });
    const r = await client.sendTemplate(payload);
    t.match(r, { kind, errcode, code: String(errcode), error: new RegExp(`errcode ${errcode}`) }, `${errcode}`);
  }
});

t.test("wechat client (mock) - HTTP errors, bad bodies and network errors are retryable", async (t) => {
  const { pool, client, calls } = setup(t);
  token(pool);
  pool.intercept({ path: SEND, method: "POST" }).reply(503, "<html>busy</html>");
  t.match(await client.sendTemplate(payload), { kind: "retryable", errcode: null, httpStatus: 503, code: "http_5xx" });
  pool.intercept({ path: SEND, method: "POST" }).reply(404, "nope");
  t.match(await client.sendTemplate(payload), { kind: "retryable", httpStatus: 404, code: "http_4xx" });
  pool.intercept({ path: SEND, method: "POST" }).reply(200, "<html>not json</html>");
  t.match(await client.sendTemplate(payload), { kind: "retryable", code: "bad_response" });
  pool.intercept({ path: SEND, method: "POST" }).reply(200, { errcode: "zero" });
  t.match(await client.sendTemplate(payload), { kind: "retryable", code: "bad_response" });
  pool.intercept({ path: SEND, method: "POST" }).replyWithError(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
  t.match(await client.sendTemplate(payload), { kind: "retryable", code: "network", error: /ECONNRESET/ });
  t.same(calls.map((c) => c[0]), [0, "http_5xx", "http_4xx", "bad_response", "bad_response", "network"]);
});

t.test("wechat client (mock) - a slow answer times out and is retryable", async (t) => {
  const { pool, client, calls } = setup(t, { timeoutMs: 100 });
  token(pool);
  pool.intercept({ path: SEND, method: "POST" }).reply(200, { errcode: 0, msgid: 1 }).delay(1000);
  const t0 = performance.now();
  const r = await client.sendTemplate(payload);
  t.match(r, { kind: "retryable", errcode: null, code: "timeout", error: /within 100 ms/ });
  t.ok(performance.now() - t0 < 900, "bounded by the time-out, not the answer");
  t.equal(calls.at(-1)?.[0], "timeout");
});

t.test("wechat client (mock) - a token errcode replaces the token and retries once", async (t) => {
  const { pool, client } = setup(t);
  token(pool, "TOKEN-OLD");
  pool.intercept({ path: "/cgi-bin/message/template/send?access_token=TOKEN-OLD", method: "POST" }).reply(200, { errcode: 42001, errmsg: "access_token expired" });
  token(pool, "TOKEN-NEW");
  pool.intercept({ path: "/cgi-bin/message/template/send?access_token=TOKEN-NEW", method: "POST" }).reply(200, { errcode: 0, msgid: 7 });
  t.match(await client.sendTemplate(payload), { kind: "success", msgid: "7" });

  // Refused again with a fresh token: not a loop, a retryable outcome.
  pool.intercept({ path: "/cgi-bin/message/template/send?access_token=TOKEN-NEW", method: "POST" }).reply(200, { errcode: 40001, errmsg: "invalid credential" });
  token(pool, "TOKEN-3");
  pool.intercept({ path: "/cgi-bin/message/template/send?access_token=TOKEN-3", method: "POST" }).reply(200, { errcode: 40001, errmsg: "invalid credential" });
  t.match(await client.sendTemplate(payload), { kind: "retryable", errcode: 40001 });
});

t.test("wechat client (mock) - stable_token handing back the rejected token forces a refresh", async (t) => {
  const { pool, client } = setup(t);
  token(pool, "TOKEN-A");
  pool.intercept({ path: "/cgi-bin/message/template/send?access_token=TOKEN-A", method: "POST" }).reply(200, { errcode: 40001 });
  const bodies: { force_refresh: boolean }[] = [];
  // stable_token in normal mode hands back the token WeChat just refused; forced, a new one.
  pool.intercept({ path: "/cgi-bin/stable_token", method: "POST" }).reply((req) => {
    const b = JSON.parse(String(req.body)) as { force_refresh: boolean };
    bodies.push(b);
    return { statusCode: 200, data: b.force_refresh ? { access_token: "TOKEN-B", expires_in: 7200 } : { access_token: "TOKEN-A", expires_in: 6000 } };
  }).times(2);
  pool.intercept({ path: "/cgi-bin/message/template/send?access_token=TOKEN-B", method: "POST" }).reply(200, { errcode: 0, msgid: 9 });
  t.match(await client.sendTemplate(payload), { kind: "success", msgid: "9" });
  t.same(bodies.map((b) => b.force_refresh), [false, true]);
});

t.test("wechat client (mock) - no token: retryable, secret and token never in logs or errors", async (t) => {
  const { pool, client, lines } = setup(t);
  pool.intercept({ path: "/cgi-bin/stable_token", method: "POST" }).reply(200, { errcode: 40125, errmsg: `invalid appsecret ${SECRET}` });
  const r = await client.sendTemplate(payload);
  t.match(r, { kind: "retryable", errcode: 40125, code: "token_unavailable", error: /40125/ });
  t.notMatch(r.kind === "success" ? "" : r.error, SECRET);

  token(pool, "TOKEN-SECRET-VALUE");
  pool.intercept({ path: SEND, method: "POST" }).replyWithError(new Error(`connect failed for ${BASE}/cgi-bin/message/template/send?access_token=TOKEN-SECRET-VALUE`));
  const r2 = await client.sendTemplate(payload);
  t.match(r2, { kind: "retryable", code: "network" });
  t.notMatch(r2.kind === "success" ? "" : r2.error, "TOKEN-SECRET-VALUE");
  pool.intercept({ path: SEND, method: "POST" }).reply(200, { errcode: 40001, errmsg: "echo TOKEN-SECRET-VALUE" });
  pool.intercept({ path: "/cgi-bin/stable_token", method: "POST" }).reply(200, { access_token: "TOKEN-SECRET-VALUE", expires_in: 7200 }).times(2);
  const r3 = await client.sendTemplate(payload);
  t.notMatch(r3.kind === "success" ? "" : r3.error, "TOKEN-SECRET-VALUE");

  const all = lines.join("");
  t.ok(all.length > 0, "something was logged");
  t.notMatch(all, SECRET);
  t.notMatch(all, "TOKEN-SECRET-VALUE");
});

t.test("wechat client (mock) - built from config; close() is idempotent and later sends are retryable", async (t) => {
  const agent = new MockAgent();
  agent.disableNetConnect();
  t.teardown(() => agent.close());
  const client = createWeChatClient({ WECHAT_API_BASE: `${BASE}/`, WECHAT_APP_ID: "wx", WECHAT_APP_SECRET: "s", WECHAT_TIMEOUT_MS: 1000 }, { dispatcher: agent });
  t.equal(client.appId, "wx");
  await Promise.all([client.close(), client.close()]);
  t.match(await client.sendTemplate(payload), { kind: "retryable", code: "closed" });
});
