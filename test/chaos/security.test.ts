// Security checks of a running system. The gateway's own tests already walk its route
// table with app.inject (services/gateway/test/auth.test.ts) and test/pipeline/metrics-e2e
// checks that the app secret, an API key and access_token fields stay out of the logs.
// This file extends both: the published OpenAPI contract and path tricks over real HTTP,
// the key comparison itself, and every actual secret value (issued access tokens, NATS
// password, webhook path) in the output of a full run at trace level. NATS credentials of
// every kind: nats-credentials.test.ts.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Buckets, Status, Subjects, decodeJson, encodeJson, type EventEnvelope } from "@notify/contracts";
import { RecordStore, connectNats, ensureTopology, type NatsSettings } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { startSimulator } from "@notify/wechat-simulator";
import { paidEvent } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";
import { Processes, putTemplate, sendIdOf, summaryLine, stopwatch, tally, workerEnv } from "../support/chaos.js";
import { paidTemplate } from "../support/fixtures.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const secret = (label: string) => `${label}-${randomBytes(12).toString("hex")}`;

/** Raw HTTP so the path reaches the server exactly as written (fetch normalises dots). */
function rawRequest(base: string, method: string, rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path: rawPath, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

t.test("security - a full run at trace level: no secret value in any process output", async (t) => {
  const APP_SECRET = secret("app-secret");
  const API_KEYS = [secret("key-a"), secret("key-b")];
  const WRONG_KEY = secret("not-a-key");
  const NATS_PASS = secret("nats-pass");
  const HOOK_SECRET = secret("hook");
  const server = await NatsServer.start({ extraConfig: `authorization { user: notify, password: "${NATS_PASS}" }` });
  t.teardown(() => server.stop());
  const settings: NatsSettings = { NATS_URL: [server.url], NATS_USER: "notify", NATS_PASS };
  const nc = await connectNats(settings, "chaos-security");
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  const records = new RecordStore(topo.buckets.records);
  const sim = await startSimulator({ appId: "wx-chaos-security", appSecret: APP_SECRET });
  t.teardown(() => sim.close());
  const hooks: string[] = [];
  const hook = createServer((req, res) => {
    hooks.push(req.url ?? "");
    req.resume();
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => hook.close(() => r())));

  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const env = workerEnv(server.url, sim, {
    NATS_USER: "notify",
    NATS_PASS,
    WECHAT_APP_ID: "wx-chaos-security",
    WECHAT_APP_SECRET: APP_SECRET,
    SENDER_ACK_WAIT_MS: "1500",
    RETRY_BASE_MS: "20",
    LOG_LEVEL: "trace",
  });
  // Every byte each process prints (ServiceProcess keeps only the last lines).
  const output: string[] = [];
  const capture = <P extends { proc: { stdout: NodeJS.ReadableStream | null; stderr: NodeJS.ReadableStream | null } }>(p: P) => {
    for (const s of [p.proc.stdout, p.proc.stderr]) s?.on("data", (b: Buffer) => output.push(b.toString()));
    return p;
  };
  const gateway = capture(procs.start("gateway", { ...env, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", GATEWAY_API_KEYS: API_KEYS.join(",") }));
  capture(procs.start("dispatcher", env));
  capture(procs.start("sender", env));
  capture(
    procs.start("dlq-monitor", {
      ...env,
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hooks/${HOOK_SECRET}`,
      DLQ_ALERT_THRESHOLD: "0",
      DLQ_CHECK_INTERVAL_MS: "500",
    }),
  );
  await Promise.all(procs.all.map((p) => p.ready(30_000)));
  const base = new URL(String((await gateway.ready()).docs)).origin;
  const elapsed = stopwatch();
  const auth = { authorization: `Bearer ${API_KEYS[1]}`, "content-type": "application/json" };

  // Drive every path that touches a secret: template upsert, HTTP ingress, a wrong key,
  // retries, an expired token (refresh), a permanent failure, a dead letter and its alert.
  const tpl = await fetch(`${base}/notifications/templates`, { method: "POST", headers: auth, body: JSON.stringify({ ...paidTemplate(), updated_at: undefined, revision: undefined }) });
  t.ok(tpl.status === 200 || tpl.status === 201, `template stored over HTTP (${tpl.status})`);
  const wrong = await fetch(`${base}/notifications/templates`, { headers: { authorization: `Bearer ${WRONG_KEY}` } });
  t.equal(wrong.status, 401, "a wrong key is refused");
  const ok = paidEvent();
  const retried = paidEvent();
  const permanent = paidEvent();
  const dead = paidEvent();
  const afterExpiry = paidEvent();
  sim.setFault({ kind: "errcode", errcode: -1, openid: retried.recipient.openid, times: 2 });
  sim.setFault({ kind: "errcode", errcode: 43004, openid: permanent.recipient.openid });
  sim.setFault({ kind: "errcode", errcode: 45011, openid: dead.recipient.openid });
  for (const e of [ok, retried, permanent, dead]) {
    const r = await fetch(`${base}/notifications/events`, { method: "POST", headers: auth, body: JSON.stringify(e) });
    t.equal(r.status, 202, "event accepted over HTTP");
  }
  const final = (e: EventEnvelope, status: string) =>
    waitFor(async () => (await records.get(sendIdOf(e)))?.record.status === status, `${sendIdOf(e)} ${status}`, 30_000);
  await final(ok, Status.success);
  sim.expireTokens();
  const r = await fetch(`${base}/notifications/events`, { method: "POST", headers: auth, body: JSON.stringify(afterExpiry) });
  t.equal(r.status, 202, "event accepted after the token expired");
  await final(afterExpiry, Status.success);
  await final(retried, Status.success);
  await final(permanent, Status.failed);
  await final(dead, Status.dead);
  await waitFor(() => hooks.length > 0, "an alert at the webhook", 20_000);
  const sendLog = await fetch(`${base}/notifications/sends/${sendIdOf(ok)}`, { headers: auth });
  t.equal(sendLog.status, 200, "the send log answers");
  t.ok(sim.stats().tokensIssued >= 2, `the token was refreshed after expiry (${sim.stats().tokensIssued} issued)`);

  // Every access token the simulator issued went through the shared KV record.
  const tokens = new Set<string>();
  const kv = await new Kvm(nc).open(Buckets.tokens);
  for await (const e of await kv.history()) {
    if (e.operation !== "PUT") continue;
    const v = decodeJson<Record<string, unknown>>(e.value);
    for (const val of Object.values(v)) if (typeof val === "string" && val.startsWith("SIM_")) tokens.add(val);
  }
  t.ok(tokens.size >= 2, `${tokens.size} issued access tokens collected`);
  await procs.stopAll(); // flush and include the shutdown lines
  const all = output.join("");
  t.ok(all.length > 10_000, `captured ${all.length} bytes of trace-level output`);
  const leaks: Record<string, string[]> = {
    "app secret": [APP_SECRET],
    "API key": API_KEYS,
    "wrong bearer key": [WRONG_KEY],
    "NATS password": [NATS_PASS],
    "webhook path secret": [HOOK_SECRET],
    "access token": [...tokens],
  };
  for (const [what, values] of Object.entries(leaks)) {
    const found = values.filter((v) => all.includes(v));
    t.same(found.length, 0, `no ${what} in any output`);
  }
  const events = [ok, retried, permanent, dead, afterExpiry];
  const inDlq = new Set([sendIdOf(permanent), sendIdOf(dead)]);
  t.comment(summaryLine("security-full-run", tally(sim, events, inDlq), elapsed(), { bytes_scanned: all.length, secrets_checked: Object.values(leaks).flat().length }));
});

t.test("security - admin routes: the published contract, real HTTP and path tricks", async (t) => {
  const KEY = secret("key");
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const gw = await procs.startReady("gateway", { NATS_URL: server.url, GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", GATEWAY_API_KEYS: KEY, LOG_LEVEL: "info" });
  const base = new URL(String((await gw.ready()).docs)).origin;

  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: unknown[]; responses?: Record<string, unknown> }>> };
  const ops = Object.entries(doc.paths)
    .filter(([p]) => p.startsWith("/notifications"))
    .flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => ({ path: p, method: m.toUpperCase(), op })));
  t.ok(ops.length >= 12, `${ops.length} /notifications operations in the OpenAPI document`);
  const fill = (p: string) =>
    p.replace(/\{(\w+)\}/g, (_m, n: string) => ({ seq: "1", event: "order.paid", channel: "wechat", language: "zh-CN", send_id: "snd_00000000000000000000000000000000" })[n] ?? "x");
  for (const { path: p, method, op } of ops) {
    t.ok(op.security?.length && op.responses?.["401"], `${method} ${p}: documents the bearer requirement and 401`);
    const res = await rawRequest(base, method, fill(p), method === "POST" ? { "content-type": "application/json" } : {});
    t.equal(res.status, 401, `${method} ${p}: 401 over HTTP without a key`);
  }

  const tricks = [
    "/notifications/templates/",
    "/notifications//templates",
    "/notifications/./templates",
    "/notifications/../notifications/templates",
    "/x/../notifications/templates",
    "/notifications%2Ftemplates",
    "/%6Eotifications/templates",
    "/NOTIFICATIONS/templates",
    "/notifications/templates%00",
    "/notifications/templates;x=1",
    "/notifications/templates?event=order.paid",
    "/notifications/templates#frag",
    "//notifications/templates",
  ];
  for (const p of tricks) {
    for (const method of ["GET", "HEAD", "POST", "DELETE"]) {
      const res = await rawRequest(base, method, p, method === "POST" ? { "content-type": "application/json" } : {});
      t.ok(res.status === 401 || res.status === 404 || res.status === 400 || res.status === 405, `${method} ${p}: ${res.status}, never served without a key`);
    }
  }
  const opts = await rawRequest(base, "OPTIONS", "/notifications/templates");
  t.ok(opts.status >= 400 && !opts.body.includes("template_id"), `OPTIONS: ${opts.status}, no data`);

  // Swagger UI and the document never carry a configured key.
  const pages = ["/openapi.json", "/docs", "/docs/", "/docs/static/index.html", "/docs/static/swagger-initializer.js", "/docs/json", "/docs/yaml"];
  for (const p of pages) {
    const res = await fetch(`${base}${p}`);
    const text = await res.text();
    t.notOk(text.includes(KEY), `${p} (${res.status}) does not contain the key`);
  }
  const ui = await (await fetch(`${base}/docs/static/swagger-initializer.js`)).text();
  t.notMatch(ui, /persistAuthorization:\s*true/, "Swagger UI does not persist an entered key in the browser");
});

t.test("security - the bearer check compares fixed-length digests with timingSafeEqual", async (t) => {
  const src = readFileSync(path.join(root, "services/gateway/src/auth.ts"), "utf8");
  t.match(src, /import \{[^}]*timingSafeEqual[^}]*\} from "node:crypto"/, "timingSafeEqual from node:crypto");
  t.match(src, /\b(?:createHash\("sha256"\)|hash\("sha256", )/, "both sides hashed with sha256 (32 bytes each, whatever the key length)");
  t.match(src, /timingSafeEqual\(k\.d, presented\)/, "the comparison is between digests");
  const loop = /for \(const k of digests\) \{([\s\S]*?)\n {6}\}/.exec(src)?.[1] ?? "";
  t.ok(loop && !/return|break/.test(loop), "every configured key is compared: no early exit in the loop");
  t.notMatch(src, /===\s*presented|presented\s*===|\.equals\(/, "no plain equality on keys anywhere");
  const { createKeyVerifier } = await import("@notify/gateway");
  const v = createKeyVerifier(["short", "a-much-longer-configured-key-0123456789"]);
  // timingSafeEqual throws on buffers of different lengths: hashing first is what makes these safe.
  for (const k of ["", "s", "x".repeat(10_000), "a-much-longer-configured-key-012345678", "🎫"]) {
    t.doesNotThrow(() => v.verify(`Bearer ${k}`), `a ${k.length}-character key is checked without throwing`);
  }
  t.type(v.verify("Bearer short"), "string");
});

// The shared access token lives in the wechat_tokens bucket by design; nothing else on the
// bus (events, jobs, records, facts) may carry it or the app secret.
t.test("security - events, jobs, records and facts on the bus carry no WeChat credential", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const settings: NatsSettings = { NATS_URL: [server.url] };
  const nc = await connectNats(settings, "chaos-bus");
  t.teardown(() => nc.close());
  const topo = await ensureTopology(nc);
  const APP_SECRET = secret("bus-secret");
  const sim = await startSimulator({ appSecret: APP_SECRET });
  t.teardown(() => sim.close());
  await putTemplate(topo.buckets.templates, paidTemplate());
  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const env = workerEnv(server.url, sim, { WECHAT_APP_SECRET: APP_SECRET, SENDER_ACK_WAIT_MS: "1500" });
  await Promise.all([procs.startReady("dispatcher", env), procs.startReady("sender", env)]);
  const seen: string[] = [];
  const sub = nc.subscribe(">", {
    callback: (_e, m) => {
      seen.push(`${m.subject} ${new TextDecoder().decode(m.data)}`);
    },
  });
  t.teardown(() => sub.unsubscribe());
  const e = paidEvent();
  await jetstream(nc).publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
  await waitFor(() => sim.deliveriesFor(sendIdOf(e)).length === 1, "delivery");
  const bus = seen.filter((s) => !s.startsWith("$KV.wechat_tokens") && !s.startsWith("$JS.API") && !s.startsWith("_INBOX")).join("\n");
  t.ok(bus.length > 0, "bus traffic captured");
  t.notOk(bus.includes(APP_SECRET), "the app secret never travels on the bus");
  t.notMatch(bus, /SIM_[\w-]{40,}/, "no access token outside the token bucket");
});
