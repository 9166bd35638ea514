import t, { type Test } from "tap";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Errcode, FaultKind, SimulatorControl, SimulatorControlError, startSimulator, type Simulator } from "@notify/wechat-simulator";

const APP = { appid: "wx-test-app", secret: "s3cret-value" };

async function sim(t: Test, opts: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  const s = await startSimulator({ appId: APP.appid, appSecret: APP.secret, ...opts });
  t.teardown(() => s.close());
  return s;
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function stableToken(s: Simulator, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return fetch(`${s.url}/cgi-bin/stable_token`, {
    method: "POST",
    body: JSON.stringify({ grant_type: "client_credential", appid: APP.appid, secret: APP.secret, ...body }),
  }).then(json);
}

async function token(s: Simulator): Promise<string> {
  return (await stableToken(s)).access_token as string;
}

function send(s: Simulator, tok: string, msg: Record<string, unknown>, init: RequestInit = {}): Promise<Response> {
  return fetch(`${s.url}/cgi-bin/message/template/send?access_token=${encodeURIComponent(tok)}`, {
    method: "POST",
    body: JSON.stringify({ template_id: "TPL-1", data: { thing1: { value: "West Lake" } }, ...msg }),
    ...init,
  });
}

t.test("wechat simulator - cgi-bin/token validates the app and issues tokens", async (t) => {
  const s = await sim(t);
  const q = (p: Record<string, string>) => fetch(`${s.url}/cgi-bin/token?${new URLSearchParams(p)}`).then(json);
  t.match(await q({ grant_type: "client_credential", appid: "wx-other", secret: APP.secret }), { errcode: 40013, errmsg: /^invalid appid/ });
  t.match(await q({ grant_type: "client_credential", appid: APP.appid, secret: "wrong" }), { errcode: 40125 });
  t.match(await q({ grant_type: "password", appid: APP.appid, secret: APP.secret }), { errcode: 40002 });
  t.match(await q({ grant_type: "client_credential", secret: APP.secret }), { errcode: 41002 });
  const a = await q({ grant_type: "client_credential", appid: APP.appid, secret: APP.secret });
  const b = await q({ grant_type: "client_credential", appid: APP.appid, secret: APP.secret });
  t.equal(a.expires_in, 7200);
  t.type(a.access_token, "string");
  t.not(a.access_token, b.access_token, "every cgi-bin/token call mints a new token");
  t.equal(await (await send(s, a.access_token as string, { touser: "o1" })).json().then((r) => (r as { errcode: number }).errcode), 0, "the previous token still works for a while");
  t.match(s.stats(), { tokenCalls: 6, tokensIssued: 2 });
});

t.test("wechat simulator - stable_token returns the same token until expiry unless force_refresh", async (t) => {
  const s = await sim(t, { tokenTtlSec: 3600 });
  const a = await stableToken(s);
  const b = await stableToken(s);
  t.equal(a.access_token, b.access_token, "normal mode: same token");
  t.ok((b.expires_in as number) <= 3600 && (b.expires_in as number) > 3590, "remaining lifetime");
  t.match(await stableToken(s, { secret: "nope" }), { errcode: 40125 });

  const forced = await stableToken(s, { force_refresh: true });
  t.not(forced.access_token, a.access_token, "force_refresh mints a new token");
  t.match(await (await send(s, a.access_token as string, { touser: "o1" })).json(), { errcode: 40001 }, "the old one is invalid at once");
  t.match(await (await send(s, forced.access_token as string, { touser: "o1" })).json(), { errcode: 0 });

  t.equal(s.expireTokens(), 1, "one live token expired");
  t.match(await (await send(s, forced.access_token as string, { touser: "o1" })).json(), { errcode: 42001, errmsg: /^access_token expired/ });
  const after = await stableToken(s);
  t.not(after.access_token, forced.access_token, "an expired stable token is replaced without force");
  t.match(await (await send(s, "", { touser: "o1" })).json(), { errcode: 41001 });
  t.match(s.stats(), { stableTokenCalls: 5, forceRefreshes: 1, tokensIssued: 3, tokenRejections: 3 });
});

t.test("wechat simulator - send records the message and answers a msgid", async (t) => {
  const s = await sim(t);
  const tok = await token(s);
  const before = Date.now();
  const res = await send(s, tok, { touser: "oUser1", client_msg_id: "snd_1", url: "https://example.com/o/1", miniprogram: { appid: "wxmini", pagepath: "p/1" } });
  t.equal(res.status, 200);
  t.match(res.headers.get("content-type"), /^application\/json/);
  const body = await json(res);
  t.match(body, { errcode: 0, errmsg: "ok", msgid: Number });
  t.equal(s.messages.length, 1);
  const m = s.messages[0]!;
  t.match(m, { msgid: body.msgid, touser: "oUser1", template_id: "TPL-1", client_msg_id: "snd_1", url: "https://example.com/o/1", miniprogram: { appid: "wxmini", pagepath: "p/1" } });
  t.same(m.data, { thing1: { value: "West Lake" } });
  t.ok(m.accepted_at >= before && m.accepted_at <= Date.now() + 1, "accepted_at is epoch ms");
  t.same(s.messagesTo("oUser1"), [m]);
  t.same(s.deliveriesFor("snd_1"), [m]);

  t.match(await (await send(s, tok, { touser: "" })).json(), { errcode: 40003 });
  t.match(await (await send(s, tok, { touser: "o1", template_id: "" })).json(), { errcode: 40037 });
  t.match(await (await fetch(`${s.url}/cgi-bin/message/template/send?access_token=${tok}`, { method: "POST", body: "{not json" })).json(), { errcode: 47001 });
  t.match(await (await fetch(`${s.url}/cgi-bin/message/template/send?access_token=${tok}`, { method: "POST" })).json(), { errcode: 44002 });
  t.match(s.stats(), { accepted: 1, failed: 4, sendCalls: 5 });
});

t.test("wechat simulator - client_msg_id de-duplicates per openid within the window", async (t) => {
  const s = await sim(t, { dedupWindowMs: 200 });
  const tok = await token(s);
  const first = await json(await send(s, tok, { touser: "oA", client_msg_id: "snd_dup" }));
  const again = await json(await send(s, tok, { touser: "oA", client_msg_id: "snd_dup" }));
  t.equal(again.errcode, 0);
  t.equal(again.msgid, first.msgid, "the original msgid");
  t.equal(s.deliveriesFor("snd_dup").length, 1, "delivered once");
  t.match(s.stats(), { accepted: 1, duplicates: 1 });

  const other = await json(await send(s, tok, { touser: "oB", client_msg_id: "snd_dup" }));
  t.not(other.msgid, first.msgid, "another openid is another message");
  await json(await send(s, tok, { touser: "oA" }));
  await json(await send(s, tok, { touser: "oA" }));
  t.equal(s.messagesTo("oA").length, 3, "no client_msg_id: no de-duplication");

  // The window is time itself: nothing to await but the clock.
  await new Promise((r) => setTimeout(r, 220));
  const late = await json(await send(s, tok, { touser: "oA", client_msg_id: "snd_dup" }));
  t.not(late.msgid, first.msgid, "after the window it is a new message");
  t.equal(s.deliveriesFor("snd_dup").length, 3);
});

t.test("wechat simulator - fail the next N sends with an errcode, globally or per openid", async (t) => {
  const s = await sim(t);
  const tok = await token(s);
  s.setFault({ kind: FaultKind.errcode, errcode: -1, times: 2 });
  s.setFault({ kind: FaultKind.errcode, errcode: Errcode.requireSubscribe, openid: "oUnsub" });
  t.match(await json(await send(s, tok, { touser: "oUnsub" })), { errcode: 43004, errmsg: /^require subscribe rid: / }, "the openid fault wins over the global one");
  t.match(await json(await send(s, tok, { touser: "o1", client_msg_id: "c1" })), { errcode: -1, errmsg: /^system error/ });
  t.match(await json(await send(s, tok, { touser: "o1", client_msg_id: "c1" })), { errcode: -1 });
  t.match(await json(await send(s, tok, { touser: "o1", client_msg_id: "c1" })), { errcode: 0 }, "third try succeeds");
  t.match(await json(await send(s, tok, { touser: "oUnsub" })), { errcode: 43004 }, "without times it lasts until cleared");
  t.equal(s.deliveriesFor("c1").length, 1);
  t.match(s.faults(), [{ openid: "oUnsub", remaining: null, hits: 2 }], "the spent fault is gone");
  t.equal(s.clearFaults({ openid: "oUnsub" }), 1);
  t.match(await json(await send(s, tok, { touser: "oUnsub" })), { errcode: 0 });
  t.match(s.stats(), { accepted: 2, failed: 4 });
});

t.test("wechat simulator - outage mode fails every send until cleared", async (t) => {
  const s = await sim(t);
  const tok = await token(s);
  s.setFault({ kind: FaultKind.errcode, errcode: Errcode.minuteQuota });
  for (let i = 0; i < 5; i++) t.match(await json(await send(s, tok, { touser: `o${i}` })), { errcode: 45011 });
  s.clearFaults();
  t.match(await json(await send(s, tok, { touser: "o1" })), { errcode: 0 });
});

t.test("wechat simulator - HTTP 5xx, dropped connections and unanswered calls", async (t) => {
  const s = await sim(t);
  const tok = await token(s);
  s.setFault({ kind: FaultKind.http, status: 502, times: 1 });
  const r = await send(s, tok, { touser: "o1" });
  t.equal(r.status, 502);
  t.match(await r.text(), /<html>/);

  s.setFault({ kind: FaultKind.drop, times: 1 });
  await t.rejects(send(s, tok, { touser: "o1" }), "the connection is dropped");

  s.setFault({ kind: FaultKind.timeout, times: 1 });
  await t.rejects(send(s, tok, { touser: "o1" }, { signal: AbortSignal.timeout(150) }), { name: "TimeoutError" });
  t.match(s.stats(), { failed: 3, dropped: 1, timedOut: 1, accepted: 0 });
  t.match(await json(await send(s, tok, { touser: "o1" })), { errcode: 0 }, "faults spent");
});

t.test("wechat simulator - a lost answer after acceptance: the retry is a duplicate, not a second message", async (t) => {
  const s = await sim(t);
  const tok = await token(s);
  s.setFault({ kind: FaultKind.drop, afterAccept: true, times: 1 });
  await t.rejects(send(s, tok, { touser: "o1", client_msg_id: "snd_lost" }));
  t.equal(s.deliveriesFor("snd_lost").length, 1, "delivered although the caller saw an error");
  const retry = await json(await send(s, tok, { touser: "o1", client_msg_id: "snd_lost" }));
  t.equal(retry.msgid, s.deliveriesFor("snd_lost")[0]!.msgid);
  t.match(s.stats(), { accepted: 1, duplicates: 1, dropped: 1 });
});

t.test("wechat simulator - added latency, global and per fault", async (t) => {
  const s = await sim(t, { latencyMs: 40 });
  const tok = await token(s);
  let t0 = performance.now();
  await send(s, tok, { touser: "o1" });
  t.ok(performance.now() - t0 >= 39, "global latency");
  s.setFault({ kind: FaultKind.latency, ms: 60, openid: "oSlow", times: 1 });
  t0 = performance.now();
  t.match(await json(await send(s, tok, { touser: "oSlow" })), { errcode: 0 });
  t.ok(performance.now() - t0 >= 99, "fault latency adds to it");
});

t.test("wechat simulator - token endpoint faults", async (t) => {
  const s = await sim(t);
  s.setFault({ kind: FaultKind.errcode, target: "token", errcode: -1, times: 1 });
  t.match(await stableToken(s), { errcode: -1 });
  t.type((await stableToken(s)).access_token, "string");
  t.throws(() => s.setFault({ kind: FaultKind.errcode, target: "token", errcode: -1, openid: "o1" }), { name: "FaultSpecError" });
  t.throws(() => s.setFault({ kind: FaultKind.errcode, errcode: 0 }), { name: "FaultSpecError" });
});

t.test("wechat simulator - HTTP control API drives it from another process", async (t) => {
  const s = await sim(t);
  const ctl = new SimulatorControl(s.url);
  t.equal(await ctl.health(), true);
  const tok = await token(s);

  const [f] = await ctl.setFaults({ kind: "errcode", errcode: 45009, times: 1 });
  t.match(f, { id: String, kind: "errcode", errcode: 45009, remaining: 1, target: "send" });
  t.match(await ctl.faults(), [{ id: f!.id }]);
  t.match(await json(await send(s, tok, { touser: "o1", client_msg_id: "a" })), { errcode: 45009 });
  t.same(await ctl.faults(), []);

  await ctl.setFaults([{ kind: "errcode", errcode: 43004, openid: "oX" }, { kind: "latency", ms: 1 }]);
  t.equal(await ctl.clearFaults("oX"), 1);
  t.equal(await ctl.clearFaults(), 1);
  await t.rejects(ctl.setFaults({ kind: "explode" } as never), SimulatorControlError);
  const bad = await fetch(`${s.url}/_sim/faults`, { method: "POST", body: JSON.stringify({ kind: "http", status: 200 }) });
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: /status/ });

  const mid = Date.now();
  await send(s, tok, { touser: "o1", client_msg_id: "a" });
  await send(s, tok, { touser: "o2", client_msg_id: "b" });
  await send(s, tok, { touser: "o2", client_msg_id: "c" });
  const all = await ctl.messages();
  t.equal(all.count, 3);
  t.equal(all.last_seq, 3);
  t.equal((await ctl.messages({ since: mid })).count, 3);
  t.equal((await ctl.messages({ since: Date.now() + 1000 })).count, 0);
  t.same((await ctl.messages({ after: 1 })).messages.map((m) => m.client_msg_id), ["b", "c"]);
  t.same((await ctl.messages({ touser: "o2", limit: 1 })).messages.map((m) => m.client_msg_id), ["b"]);
  t.same((await ctl.messages({ client_msg_id: "c" })).messages.map((m) => m.touser), ["o2"]);
  t.match(await ctl.stats(), { accepted: 3, failed: 1, sendCalls: 4, stableTokenCalls: 1, tokensIssued: 1 });

  t.equal(await ctl.expireTokens(), 1);
  t.match(await json(await send(s, tok, { touser: "o1" })), { errcode: 42001 });

  await ctl.reset();
  t.match(await ctl.stats(), { accepted: 0, failed: 0, messagesHeld: 0 });
  t.equal((await ctl.messages()).count, 0);
  t.equal((await fetch(`${s.url}/_sim/nothing`)).status, 404);
  t.equal((await fetch(`${s.url}/cgi-bin/unknown`)).status, 404);
});

t.test("wechat simulator - close() is idempotent and ends unanswered calls", async (t) => {
  const s = await startSimulator();
  const tok = await token(s).catch(() => "");
  s.setFault({ kind: FaultKind.timeout });
  const hanging = send(s, tok, { touser: "o1" }).then(
    () => "answered",
    () => "ended",
  );
  await t.resolves(Promise.all([s.close(), s.close()]));
  t.equal(await hanging, "ended");
});

t.test("wechat simulator - the bin prints its URL, never the secret, and stops on SIGTERM", async (t) => {
  const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, main], {
    env: { ...process.env, SIM_PORT: "0", WECHAT_APP_ID: "wx-bin", WECHAT_APP_SECRET: "bin-secret-xyz", SIM_LATENCY_MS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(child, "exit");
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let out = "";
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  out += first;
  const info = JSON.parse(first) as { url: string; appid: string };
  t.match(info, { url: /^http:\/\/127\.0\.0\.1:\d+$/, appid: "wx-bin" });
  const tok = await fetch(`${info.url}/cgi-bin/stable_token`, { method: "POST", body: JSON.stringify({ grant_type: "client_credential", appid: "wx-bin", secret: "bin-secret-xyz" }) }).then(json);
  t.type(tok.access_token, "string");
  lines.on("line", (l) => (out += l));
  child.kill("SIGTERM");
  const [code] = await exited;
  t.equal(code, 0);
  t.notMatch(out, "bin-secret-xyz");
  t.notMatch(out, tok.access_token as string);
  t.match(out, /stopped/);
});
