import t, { type Test } from "tap";
import { connect } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { encodeJson, encodeKeyToken, type WeChatTemplatePayload } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { FaultKind, startSimulator, type Simulator } from "@notify/wechat-simulator";
import { WeChatClient, type SendResult, type WeChatClientOptions } from "@notify/wechat";

// One nats-server for the file; each test uses its own app id, so its own token key.
const server = await NatsServer.start();
t.teardown(() => server.stop());
const nc = await connect({ servers: server.url, noAsyncTraces: true });
t.teardown(() => nc.close());
const { buckets } = await ensureTopology(nc);
const kv: KV = buckets.tokens;

const SECRET = "integration-secret-42";
/** The simulator's tokens start with SIM_: none may show up in logs or errors. */
const TOKEN_SHAPE = /SIM_[\w-]{20,}/;
let apps = 0;

interface Rig {
  sim: Simulator;
  appId: string;
  lines: string[];
  client: (o?: Partial<WeChatClientOptions>) => WeChatClient;
}

async function rig(t: Test, simOpts: Parameters<typeof startSimulator>[0] = {}): Promise<Rig> {
  const appId = `wx-it-${++apps}-${process.pid}`;
  const sim = await startSimulator({ appId, appSecret: SECRET, ...simOpts });
  t.teardown(() => sim.close());
  const lines: string[] = [];
  const log = createLogger({ name: "wechat-test", level: "trace" }, { write: (s: string) => void lines.push(s) });
  return {
    sim,
    appId,
    lines,
    client: (o = {}) => {
      const c = new WeChatClient({ appId, appSecret: SECRET, apiBase: sim.url, tokenBucket: kv, log, timeoutMs: 2000, ...o });
      t.teardown(() => c.close());
      return c;
    },
  };
}

function payload(sendId: string, touser = "oTraveller1"): WeChatTemplatePayload {
  return { touser, template_id: "TPL-PAID", client_msg_id: sendId, url: "https://example.com/o/1", data: { thing1: { value: "West Lake night tour" }, amount2: { value: "128.50" } } };
}

function errorOf(r: SendResult): string {
  return r.kind === "success" ? "" : r.error;
}

t.test("wechat client - success with msgid, token stored in KV for other replicas", async (t) => {
  const { sim, client, appId } = await rig(t);
  const c = client();
  const r = await c.sendTemplate(payload("snd_ok"));
  t.match(r, { kind: "success", errcode: 0 });
  const [m] = sim.deliveriesFor("snd_ok");
  t.ok(m, "delivered");
  t.equal(r.kind === "success" && r.msgid, String(m!.msgid), "the simulator's msgid");
  t.match(m, { touser: "oTraveller1", template_id: "TPL-PAID", url: "https://example.com/o/1", data: { thing1: { value: "West Lake night tour" } } });

  const stored = (await kv.get(encodeKeyToken(appId)))!.json<Record<string, unknown>>();
  t.match(stored, { access_token: TOKEN_SHAPE, expires_at: Number, refreshed_by: String });
  t.notOk("refreshing" in stored, "no lease left behind");

  const other = client();
  t.match(await other.sendTemplate(payload("snd_ok2")), { kind: "success" });
  t.equal(sim.stats().stableTokenCalls, 1, "the second replica took the stored token");
});

t.test("wechat client - the same client_msg_id twice is delivered once", async (t) => {
  const { sim, client } = await rig(t);
  const c = client();
  const a = await c.sendTemplate(payload("snd_dup"));
  const b = await c.sendTemplate(payload("snd_dup"));
  t.match(b, { kind: "success" });
  t.equal(a.kind === "success" && b.kind === "success" && a.msgid === b.msgid, true, "same msgid");
  t.equal(sim.deliveriesFor("snd_dup").length, 1);
  t.match(sim.stats(), { accepted: 1, duplicates: 1 });
});

t.test("wechat client - every fault kind is classified", async (t) => {
  const { sim, client } = await rig(t);
  const c = client({ timeoutMs: 300 });
  t.match(await c.sendTemplate(payload("warm")), { kind: "success" });
  const cases: [Parameters<Simulator["setFault"]>[0], Record<string, unknown>][] = [
    [{ kind: FaultKind.errcode, errcode: -1 }, { kind: "retryable", errcode: -1, code: "-1" }],
    [{ kind: FaultKind.errcode, errcode: 45011 }, { kind: "retryable", errcode: 45011 }],
    [{ kind: FaultKind.errcode, errcode: 43004 }, { kind: "permanent", errcode: 43004, error: /require subscribe/ }],
    [{ kind: FaultKind.errcode, errcode: 40003 }, { kind: "permanent", errcode: 40003 }],
    [{ kind: FaultKind.errcode, errcode: 45009 }, { kind: "quota", errcode: 45009 }],
    [{ kind: FaultKind.http, status: 503 }, { kind: "retryable", errcode: null, httpStatus: 503, code: "http_5xx" }],
    [{ kind: FaultKind.drop }, { kind: "retryable", errcode: null, code: "network" }],
    [{ kind: FaultKind.timeout }, { kind: "retryable", errcode: null, code: "timeout" }],
  ];
  let i = 0;
  for (const [fault, want] of cases) {
    sim.setFault({ ...fault, times: 1 });
    const r = await c.sendTemplate(payload(`snd_fault_${i++}`));
    t.match(r, want, `${fault.kind} ${fault.errcode ?? fault.status ?? ""}`);
    // Only an answer without an errcode leaves the outcome unknown (WeChat may have delivered).
    t.equal(r.kind !== "success" && r.uncertain === true, want.errcode === null, `${fault.kind}: uncertain only without an errcode`);
  }
  t.equal(sim.messages.length, 1, "only the warm-up was delivered");

  sim.setFault({ kind: FaultKind.latency, ms: 100, times: 1 });
  const slow = await c.sendTemplate(payload("snd_slow"));
  t.match(slow, { kind: "success" });
  t.ok(slow.durationMs >= 99, "latency shows in durationMs");

  // Per openid: one traveller unsubscribed, the others unaffected.
  sim.setFault({ kind: FaultKind.errcode, errcode: 43004, openid: "oGone" });
  t.match(await c.sendTemplate(payload("snd_gone", "oGone")), { kind: "permanent" });
  t.match(await c.sendTemplate(payload("snd_here", "oHere")), { kind: "success" });
});

t.test("wechat client - fails twice then succeeds: three attempts, one delivery", async (t) => {
  const { sim, client } = await rig(t);
  const c = client();
  sim.setFault({ kind: FaultKind.errcode, errcode: -1, times: 2 });
  const outcomes = [await c.sendTemplate(payload("snd_3")), await c.sendTemplate(payload("snd_3")), await c.sendTemplate(payload("snd_3"))];
  t.same(outcomes.map((o) => o.kind), ["retryable", "retryable", "success"]);
  t.equal(sim.deliveriesFor("snd_3").length, 1);
});

t.test("wechat client - a lost answer (timeout after acceptance) retried is not a second message", async (t) => {
  const { sim, client } = await rig(t);
  const c = client({ timeoutMs: 300 });
  sim.setFault({ kind: FaultKind.timeout, afterAccept: true, times: 1 });
  t.match(await c.sendTemplate(payload("snd_lost")), { kind: "retryable", code: "timeout" });
  t.equal(sim.deliveriesFor("snd_lost").length, 1, "WeChat has it");
  const again = await c.sendTemplate(payload("snd_lost"));
  t.match(again, { kind: "success", msgid: String(sim.deliveriesFor("snd_lost")[0]!.msgid) });
  t.equal(sim.deliveriesFor("snd_lost").length, 1, "still once");
});

t.test("wechat client - token expiry: one refresh and the retry succeeds", async (t) => {
  const { sim, client } = await rig(t);
  const c = client();
  t.match(await c.sendTemplate(payload("snd_before")), { kind: "success" });
  sim.expireTokens();
  const r = await c.sendTemplate(payload("snd_after"));
  t.match(r, { kind: "success" });
  t.match(sim.stats(), { stableTokenCalls: 2, forceRefreshes: 0, tokenRejections: 1, accepted: 2 });
});

t.test("wechat client - quota/get after the token expired (or was left from before a restart): one refresh and the poll answers", async (t) => {
  const { sim, client } = await rig(t);
  const c = client();
  t.ok((await c.quota()).daily_limit > 0, "a first poll answers");
  sim.expireTokens();
  const q = await c.quota();
  t.ok(q.daily_limit > 0 && q.used >= 0, "the poll answers with the quota, not 'quota/get refused: errcode 42001'");
  t.match(sim.stats(), { stableTokenCalls: 2, forceRefreshes: 0 }, "one new token, fetched without forcing a refresh");
});

t.test("wechat client - token refreshed once by one of five clients", async (t) => {
  const { sim, client } = await rig(t);
  const clients = Array.from({ length: 5 }, (_, i) => client({ replicaId: `replica-${i}` }));
  const perClient = 10;
  const burst = (tag: string) => Promise.all(clients.flatMap((c, i) => Array.from({ length: perClient }, (_, j) => c.sendTemplate(payload(`snd_${tag}_${i}_${j}`, `o${i}_${j}`)))));

  const cold = await burst("cold");
  t.ok(cold.every((r) => r.kind === "success"), "all 50 cold sends succeed");
  t.equal(sim.stats().stableTokenCalls, 1, "five replicas with no token: one stable_token call");

  sim.expireTokens();
  const warm = await burst("expired");
  t.ok(warm.every((r) => r.kind === "success"), "all 50 sends after expiry succeed");
  const s = sim.stats();
  t.equal(s.stableTokenCalls, 2, "the expired token was refreshed exactly once across five replicas");
  t.equal(s.forceRefreshes, 0);
  t.equal(s.accepted, 100, "every message delivered once");
  t.equal(s.duplicates, 0);
  t.equal(new Set(sim.messages.map((m) => m.client_msg_id)).size, 100);
});

t.test("wechat client - a rejected token that stable_token hands back is force-refreshed once", async (t) => {
  const { sim, client } = await rig(t);
  const clients = [client({ replicaId: "a" }), client({ replicaId: "b" }), client({ replicaId: "c" })];
  await Promise.all(clients.map((c, i) => c.sendTemplate(payload(`w${i}`))));
  // 40001 for each replica's next send while the token is still live at WeChat.
  sim.setFault({ kind: FaultKind.errcode, errcode: 40001, times: 3 });
  const rs = await Promise.all(clients.map((c, i) => c.sendTemplate(payload(`x${i}`))));
  t.same(rs.map((r) => r.kind), ["success", "success", "success"]);
  t.match(sim.stats(), { forceRefreshes: 1 });
});

t.test("wechat client - a dead refresher's lease runs out and another replica takes over", async (t) => {
  const { sim, client, appId } = await rig(t);
  await kv.put(encodeKeyToken(appId), encodeJson({ access_token: "", expires_at: 0, refreshing: { by: "crashed-replica", until: Date.now() + 300 } }));
  const t0 = Date.now();
  const r = await client().sendTemplate(payload("snd_takeover"));
  t.match(r, { kind: "success" });
  t.ok(Date.now() - t0 >= 250, "waited for the lease, did not call WeChat under it");
  t.equal(sim.stats().stableTokenCalls, 1);
});

t.test("wechat client - token endpoint down: retryable, the lease is released, next send recovers", async (t) => {
  const { sim, client, appId } = await rig(t);
  const c = client();
  sim.setFault({ kind: FaultKind.errcode, target: "token", errcode: -1, times: 1 });
  const r = await c.sendTemplate(payload("snd_tok"));
  t.match(r, { kind: "retryable", code: "token_unavailable", errcode: -1 });
  const stored = (await kv.get(encodeKeyToken(appId)))!.json<Record<string, unknown>>();
  t.notOk(stored.refreshing, "lease released");
  t.match(await c.sendTemplate(payload("snd_tok")), { kind: "success" });
  t.equal(sim.deliveriesFor("snd_tok").length, 1);
});

t.test("wechat client - neither the secret nor any token appears in logs or errors", async (t) => {
  const { sim, client, lines } = await rig(t);
  const c = client({ timeoutMs: 300 });
  const results: SendResult[] = [];
  results.push(await c.sendTemplate(payload("l1")));
  sim.expireTokens();
  results.push(await c.sendTemplate(payload("l2")));
  for (const f of [{ kind: FaultKind.errcode, errcode: 40001 }, { kind: FaultKind.drop }, { kind: FaultKind.timeout }, { kind: FaultKind.http, status: 500 }] as const) {
    sim.setFault({ ...f, times: 1 });
    results.push(await c.sendTemplate(payload("l3")));
  }
  sim.setFault({ kind: FaultKind.http, target: "token", status: 502, times: 1 });
  sim.expireTokens();
  results.push(await c.sendTemplate(payload("l4")));
  const logs = lines.join("");
  t.ok(lines.length >= 3, `captured ${lines.length} log lines`);
  t.match(logs, /access token refreshed/);
  t.notMatch(logs, SECRET);
  t.notMatch(logs, TOKEN_SHAPE);
  const errors = results.map(errorOf).join("\n");
  t.notMatch(errors, SECRET);
  t.notMatch(errors, TOKEN_SHAPE);
});

t.test("wechat client - close() is idempotent and ends a wait on another replica's lease", async (t) => {
  const { client, appId } = await rig(t);
  await kv.put(encodeKeyToken(appId), encodeJson({ access_token: "", expires_at: 0, refreshing: { by: "slow-replica", until: Date.now() + 60_000 } }));
  const c = client();
  const pending = c.sendTemplate(payload("snd_closing"));
  await Promise.all([c.close(), c.close()]);
  t.match(await pending, { kind: "retryable" });
});

t.test("wechat client - near expiry one background refresh, sends never wait for it", async (t) => {
  const { sim, client, appId } = await rig(t);
  let clock = Date.now();
  const c = client({ now: () => clock, refreshMarginMs: 5 * 60_000 });
  t.match(await c.sendTemplate(payload("p1")), { kind: "success" });
  const first = (await kv.get(encodeKeyToken(appId)))!.json<{ access_token: string; expires_at: number }>();

  // One minute before expiry: inside the margin. The send goes out with the current token
  // and a background refresh updates the shared record.
  clock = first.expires_at - 60_000;
  const refreshedAt = clock;
  const watch = await kv.watch({ key: encodeKeyToken(appId) });
  const written = (async () => {
    for await (const e of watch) if (e.json<{ refreshed_at?: number }>().refreshed_at === refreshedAt) return e.json<{ access_token: string }>();
    return null;
  })();
  t.match(await c.sendTemplate(payload("p2")), { kind: "success" });
  const second = await written;
  watch.stop();
  t.equal(second?.access_token, first.access_token, "stable_token keeps its token until it expires");
  t.equal(sim.stats().stableTokenCalls, 2, "one background refresh");

  // Fetched inside the margin: not stale again, so no refresh on every send.
  t.match(await c.sendTemplate(payload("p3")), { kind: "success" });
  t.match(await c.sendTemplate(payload("p4")), { kind: "success" });
  t.equal(sim.stats().stableTokenCalls, 2, "no further refresh before expiry");
  t.equal(sim.stats().accepted, 4);
});

t.test("wechat client - NATS gone while a token is needed: retryable, not thrown", async (t) => {
  const { client } = await rig(t);
  const nc2 = await connect({ servers: server.url, noAsyncTraces: true });
  const { buckets: b2 } = await ensureTopology(nc2);
  const c = client({ tokenBucket: b2.tokens });
  await nc2.close();
  const r = await c.sendTemplate(payload("snd_nats_down"));
  t.match(r, { kind: "retryable", code: "token_unavailable", errcode: null });
});
