#!/usr/bin/env node
// `npm start`: the whole system on one machine. Builds if needed, starts nats-server
// (JetStream, data under ./data), the WeChat simulator (unless a real app is configured),
// the gateway, the dispatcher, two senders and the DLQ monitor, seeds example templates
// and prints the Swagger UI URL with the local API key. Ctrl-C drains and stops it all.
// The SQL send log: with DATABASE_URL the projector runs as its own process against that
// PostgreSQL (as in production); without it the gateway fills an embedded PGlite itself.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { createServer } from "node:net";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const dataDir = path.resolve(root, env.DATA_DIR ?? "data");
const ports = {
  nats: Number(env.LOCAL_NATS_PORT ?? 4222),
  natsMonitor: Number(env.LOCAL_NATS_MONITOR_PORT ?? 8222),
  gateway: Number(env.GATEWAY_PORT ?? 3000),
  simulator: Number(env.SIM_PORT ?? 8090),
  smsSimulator: Number(env.SMS_SIM_PORT ?? 8091),
  metrics: Number(env.LOCAL_METRICS_PORT ?? 9464),
};
const children = [];
let stopping = false;

function say(msg) {
  process.stdout.write(`\x1b[1m[start]\x1b[0m ${msg}\n`);
}

function build() {
  say("building (tsc -b)…");
  const r = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-b"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error("build failed: run `npm ci` first if node_modules is missing");
    process.exit(1);
  }
}

/**
 * On a terminal the services' JSON lines are shown by pino-pretty (the services log JSON to
 * our pipe; a pipe is not a TTY). Piped or redirected, `npm start` passes the JSON through.
 * The options are libs/log's PRETTY_OPTIONS (the same form as a service run by hand).
 */
let prettyLine = null;
async function prettyFormatter() {
  try {
    const { prettyFactory } = createRequire(import.meta.url)("pino-pretty");
    const { PRETTY_OPTIONS } = await import(path.join(root, "libs/log/dist/index.js"));
    const format = prettyFactory(PRETTY_OPTIONS);
    return (line) => (line.startsWith("{") ? format(line).replace(/\n$/, "") : line);
  } catch {
    return null; // pino-pretty missing (a production install): plain lines
  }
}

const COLORS = [36, 35, 33, 32, 34, 31, 96];
/** Starts a child with prefixed, coloured output; if one dies, everything stops. */
function runProcess(name, bin, args, childEnv = env) {
  const color = COLORS[children.length % COLORS.length];
  // detached: a terminal's Ctrl-C reaches only this launcher, which stops the services
  // first (they drain) and NATS last.
  const child = spawn(bin, args, { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => process.stdout.write(`\x1b[${color}m${name.padEnd(12)}|\x1b[0m ${prettyLine ? prettyLine(line) : line}\n`));
  }
  child.on("exit", (code, signal) => {
    if (!stopping) {
      say(`${name} exited (${signal ?? code}); stopping everything`);
      void stop(1);
    }
  });
  children.push({ name, child });
  return child;
}

/** A Node service or tool of this repository. */
const run = (name, args, extraEnv) => runProcess(name, process.execPath, args, { ...env, ...extraEnv });

async function waitHttp(url, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready at ${url}`);
}

async function stopChild({ name, child }) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, 20_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  say(`${name} stopped`);
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  if (children.length) say("stopping: services drain in-flight work first…");
  // Services drain in parallel while NATS and the simulator are still up; then those two.
  const infra = new Set(["nats", "simulator"]);
  await Promise.all(children.filter((c) => !infra.has(c.name)).map(stopChild));
  for (const name of ["simulator", "nats"]) {
    const c = children.find((x) => x.name === name);
    if (c) await stopChild(c);
  }
  process.exit(code);
}

function localApiKey() {
  if (env.GATEWAY_API_KEYS) return env.GATEWAY_API_KEYS.split(",")[0].trim();
  const file = path.join(dataDir, "local-api-key");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const key = `local-${randomBytes(18).toString("base64url")}`;
  writeFileSync(file, key + "\n", { mode: 0o600 });
  return key;
}

// The real providers are used when their credentials are set and the endpoint is not local;
// otherwise the simulators run.
const realWeChat = Boolean(env.WECHAT_APP_ID && env.WECHAT_APP_SECRET && !env.WECHAT_API_BASE?.includes("127.0.0.1"));
const realSms = Boolean(env.TENCENT_SECRET_ID && env.TENCENT_SECRET_KEY && env.TENCENT_SMS_ENDPOINT && !env.TENCENT_SMS_ENDPOINT.includes("127.0.0.1"));
// SMS is on when CHANNELS names it (the dispatcher reads the same variable).
const smsOn = (env.CHANNELS ?? "wechat").split(",").map((c) => c.trim()).includes("sms");
// With SMS on, the gateway takes status reports on a URL with a per-run secret (Tencent signs nothing).
const smsCallbackToken = smsOn ? (env.TENCENT_SMS_CALLBACK_TOKEN ?? randomBytes(18).toString("base64url")) : null;

/** Seeded only with SMS on: the expired-ticket notice as a Tencent template with two params. */
const SMS_EXAMPLE_TEMPLATES = [
  {
    event: "ticket.expired",
    channel: "sms",
    template_id: "1000001",
    language: "zh-CN",
    payload_schema: { type: "object", properties: { title: { type: "string" } } },
    params: ["{{ticket_id}}", "{{title}}"],
    param_max_length: 30,
  },
];

/**
 * The SMS sender (SENDER_CHANNEL=sms) and, unless real Tencent credentials point elsewhere,
 * the SMS simulator with the sender's credentials.
 */
async function startSms(common, reportUrl) {
  let smsEnv = {};
  let simulator = null;
  if (realSms) {
    say(`SMS: Tencent Cloud SMS at ${env.TENCENT_SMS_ENDPOINT}`);
  } else {
    const creds = { TENCENT_SECRET_ID: "AKIDlocalsmssimulator", TENCENT_SECRET_KEY: "local-sms-simulator-key", TENCENT_SMS_SDK_APP_ID: "1400000000" };
    run("sms-sim", ["tools/sms-simulator/dist/main.js"], { ...creds, SMS_SIM_PORT: String(ports.smsSimulator), SMS_SIM_HOST: "127.0.0.1", SMS_SIM_REPORT_URL: reportUrl });
    simulator = `http://127.0.0.1:${ports.smsSimulator}`;
    await waitHttp(`${simulator}/_sim/health`, "SMS simulator");
    smsEnv = { ...creds, TENCENT_SMS_SIGN_NAME: env.TENCENT_SMS_SIGN_NAME ?? "LocalTravel", TENCENT_SMS_ENDPOINT: simulator };
    say(`SMS: simulator at ${simulator} (deliveries: /_sim/messages)`);
  }
  run("sender-sms", ["services/sender/dist/main.js"], { ...common, ...smsEnv, SENDER_CHANNEL: "sms", METRICS_PORT: String(ports.metrics + 4), METRICS_HOST: "127.0.0.1" });
  return { simulator };
}

/** The password part of a PostgreSQL URL never reaches the terminal. */
function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}

/**
 * With DATABASE_URL: the projector service fills that PostgreSQL (it applies the
 * migrations, so it is up before the gateway reads). Without: the gateway opens the
 * embedded PGlite under ./data/sendlog and projects into it itself.
 */
async function startSendlog(common) {
  if (!env.DATABASE_URL) {
    return { where: `embedded PGlite in the gateway (${path.relative(root, env.SENDLOG_PGLITE_DIR ?? path.join(dataDir, "sendlog")) || "."}); set DATABASE_URL for PostgreSQL and psql`, psql: null };
  }
  const port = ports.metrics + 5;
  run("projector", ["services/projector/dist/main.js"], { ...common, DATABASE_URL: env.DATABASE_URL, METRICS_PORT: String(port), METRICS_HOST: "127.0.0.1" });
  // /healthz answers once migrations are applied and the consumers run; /readyz waits for the backlog.
  await waitHttp(`http://127.0.0.1:${port}/healthz`, "projector", 120_000);
  return {
    where: `PostgreSQL ${redactUrl(env.DATABASE_URL)}, filled by the projector (http://127.0.0.1:${port}/readyz shows its lag)`,
    psql: `psql "$DATABASE_URL" -c "SELECT status, event, channel, count(*) FROM notification_events GROUP BY 1, 2, 3"`,
  };
}

async function seedTemplates(base, key, extra = []) {
  const templates = [...JSON.parse(readFileSync(path.join(root, "scripts/example-templates.json"), "utf8")), ...extra];
  const auth = { authorization: `Bearer ${key}` };
  const existing = await (await fetch(`${base}/notifications/templates`, { headers: auth })).json();
  const have = new Set((existing.items ?? existing).map((t) => `${t.event}.${t.channel}.${t.language}`));
  let seeded = 0;
  for (const t of templates) {
    if (have.has(`${t.event}.${t.channel}.${t.language}`)) continue; // keep admins' edits across restarts
    const r = await fetch(`${base}/notifications/templates`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(t) });
    if (!r.ok) throw new Error(`seeding ${t.event}/${t.language} failed: ${r.status} ${await r.text()}`);
    seeded++;
  }
  say(`templates: ${seeded} seeded, ${have.size} already present`);
}

/** Every port this run will listen on, named by who listens and the variable that moves it. */
function plannedPorts() {
  const m = ports.metrics;
  return [
    ...(env.NATS_URL ? [] : [[ports.nats, "nats-server", "LOCAL_NATS_PORT"], [ports.natsMonitor, "nats-server monitoring", "LOCAL_NATS_MONITOR_PORT"]]),
    ...(realWeChat ? [] : [[ports.simulator, "WeChat simulator", "SIM_PORT"]]),
    [ports.gateway, "gateway", "GATEWAY_PORT"],
    ...["dispatcher", "sender-1", "sender-2", "dlq-monitor"].map((name, i) => [m + i, `${name} metrics`, "LOCAL_METRICS_PORT"]),
    ...(smsOn ? [[m + 4, "sender-sms metrics", "LOCAL_METRICS_PORT"], ...(realSms ? [] : [[ports.smsSimulator, "SMS simulator", "SMS_SIM_PORT"]])] : []),
    ...(env.DATABASE_URL ? [[m + 5, "projector metrics", "LOCAL_METRICS_PORT"]] : []),
  ];
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * A port already taken would make one service exit at start and stop everything after the
 * others came up; checking them all first names the port and the variable that moves it.
 */
async function checkPorts() {
  const taken = [];
  for (const [port, who, variable] of plannedPorts()) if (!(await portFree(port))) taken.push(`${port} (${who}; set ${variable})`);
  if (taken.length) throw new Error(`port${taken.length > 1 ? "s" : ""} already in use: ${taken.join(", ")}. Another npm start may be running; stop it or choose other ports.`);
}

async function main() {
  mkdirSync(dataDir, { recursive: true });
  await checkPorts();
  if (env.SKIP_BUILD !== "1") build();
  if (process.stdout.isTTY) prettyLine = await prettyFormatter();
  const { findNatsServer, isSupportedVersion } = await import(path.join(root, "libs/nats-server/dist/index.js"));

  let natsUrl = env.NATS_URL;
  if (!natsUrl) {
    const { path: bin, version } = findNatsServer({ log: say });
    const conf = path.join(dataDir, "nats.conf");
    // sync_interval "1s": see deploy/nats/local.conf for the durability trade-off; 2.9
    // rejects the field, so an older server (started with a warning) keeps its default.
    const sync = isSupportedVersion(version) ? ` sync_interval: "1s",` : "";
    writeFileSync(
      conf,
      [`listen: 127.0.0.1:${ports.nats}`, `http: 127.0.0.1:${ports.natsMonitor}`, `server_name: local`, `jetstream { store_dir: ${JSON.stringify(path.join(dataDir, "nats"))},${sync} }`].join("\n") + "\n",
    );
    runProcess("nats", bin, ["-c", conf]);
    natsUrl = `nats://127.0.0.1:${ports.nats}`;
    await waitHttp(`http://127.0.0.1:${ports.natsMonitor}/healthz?js-enabled-only=true`, "nats-server");
  }
  say(`NATS at ${natsUrl}`);

  let wechatEnv = {};
  if (realWeChat) {
    say(`WeChat: the real API (${env.WECHAT_API_BASE ?? "https://api.weixin.qq.com"}) with app ${env.WECHAT_APP_ID}`);
  } else {
    const sim = { WECHAT_APP_ID: "wx-local-simulator", WECHAT_APP_SECRET: "local-simulator-secret" };
    run("simulator", ["tools/wechat-simulator/dist/main.js"], { ...sim, SIM_PORT: String(ports.simulator), SIM_HOST: "127.0.0.1" });
    wechatEnv = { ...sim, WECHAT_API_BASE: `http://127.0.0.1:${ports.simulator}` };
    await waitHttp(`http://127.0.0.1:${ports.simulator}/_sim/stats`, "WeChat simulator");
    say(`WeChat: simulator at http://127.0.0.1:${ports.simulator} (deliveries: /_sim/messages)`);
  }

  const key = localApiKey();
  const common = { NATS_URL: natsUrl, LOG_LEVEL: env.LOG_LEVEL ?? "info", ...wechatEnv };
  const sendlog = await startSendlog(common);
  run("gateway", ["services/gateway/dist/main.js"], { ...common, GATEWAY_HOST: env.GATEWAY_HOST ?? "127.0.0.1", GATEWAY_PORT: String(ports.gateway), GATEWAY_API_KEYS: key, SENDLOG_PGLITE_DIR: env.SENDLOG_PGLITE_DIR ?? path.join(dataDir, "sendlog"), ...(smsCallbackToken ? { TENCENT_SMS_CALLBACK_TOKEN: smsCallbackToken } : {}) });
  run("dispatcher", ["services/dispatcher/dist/main.js"], { ...common, METRICS_PORT: String(ports.metrics), METRICS_HOST: "127.0.0.1" });
  run("sender-1", ["services/sender/dist/main.js"], { ...common, METRICS_PORT: String(ports.metrics + 1), METRICS_HOST: "127.0.0.1" });
  run("sender-2", ["services/sender/dist/main.js"], { ...common, METRICS_PORT: String(ports.metrics + 2), METRICS_HOST: "127.0.0.1" });
  run("dlq-monitor", ["services/dlq-monitor/dist/main.js"], { ...common, METRICS_PORT: String(ports.metrics + 3), METRICS_HOST: "127.0.0.1" });
  const sms = smsOn ? await startSms(common, `http://127.0.0.1:${ports.gateway}/sms/status-report?token=${smsCallbackToken}`) : null;

  const base = `http://127.0.0.1:${ports.gateway}`;
  await waitHttp(`${base}/readyz`, "gateway");
  for (let i = 0; i < 4; i++) await waitHttp(`http://127.0.0.1:${ports.metrics + i}/readyz`, "workers");
  if (sms) await waitHttp(`http://127.0.0.1:${ports.metrics + 4}/readyz`, "sms sender");
  await seedTemplates(base, key, sms ? SMS_EXAMPLE_TEMPLATES : []);

  say("─".repeat(60));
  say(`Swagger UI:  ${base}/docs`);
  say(`API key:     ${key}   (Authorize → Bearer)`);
  // Every follow-up command carries the ports this run uses (they may not be the defaults).
  say(`Publish one: NATS_URL=${natsUrl} npm run publish:example -- order.paid`);
  if (!realWeChat) say(`Delivered:   curl -s http://127.0.0.1:${ports.simulator}/_sim/messages`);
  if (sms?.simulator) say(`SMS:         curl -s ${sms.simulator}/_sim/messages   (publish ticket.expired with recipient.phone)`);
  else if (!smsOn) say("SMS:         off (CHANNELS=wechat,sms npm start turns it on against the SMS simulator)");
  say(`Postman:     npx newman run postman/notification-orchestrator.postman_collection.json -e postman/local.postman_environment.json --env-var gatewayPort=${ports.gateway} --env-var apiKey=${key}`);
  say(`Metrics:     ${base}/metrics, http://127.0.0.1:${ports.metrics}..${ports.metrics + 3}/metrics`);
  say(`Send log:    ${sendlog.where}`);
  say(`             curl -s -H 'authorization: Bearer ${key}' '${base}/notifications/sends?status=failed&limit=20'`);
  if (sendlog.psql) say(`             ${sendlog.psql}`);
  say("Ctrl-C stops everything (data stays in ./data).");
  say("─".repeat(60));
  if (env.START_READY_FILE) writeFileSync(env.START_READY_FILE, JSON.stringify({ gateway: base, apiKey: key, natsUrl, simulator: realWeChat ? null : `http://127.0.0.1:${ports.simulator}` }));
}

process.on("exit", () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
main().catch((err) => {
  console.error(`[start] ${err.message}`);
  void stop(1);
});
