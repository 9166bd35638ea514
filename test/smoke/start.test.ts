import t, { type Test } from "tap";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Consumers, Streams, sendIdFor } from "@notify/contracts";
import { openDb } from "@notify/sendlog";
import { freePortBlock } from "../support/ports.js";
import { startPostgres } from "../support/postgres.js";
import { waitFor } from "../support/wait.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// Three full `npm start`s (default, SMS, PostgreSQL), each up to a minute or two on a loaded box.
t.setTimeout(10 * 60_000);

interface Started {
  sendId: string;
  natsUrl: string;
  gateway: string;
  auth: { authorization: string };
  out: () => string;
  dataDir: string;
}

/**
 * `npm start` as a newcomer runs it (with `databaseUrl`: against that PostgreSQL), then the
 * README's example event: it reaches WeChat, reads success, and appears in the SQL send log.
 * `more` runs before Ctrl-C, which must drain and stop everything.
 */
async function startAndSend(t: Test, databaseUrl: string | undefined, more: (s: Started) => Promise<void>, extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "notify-start-"));
  // Eleven ports in one block: nats, its monitor, gateway, two simulators, six metrics ports.
  const base = await freePortBlock(11);
  const [nats, natsMonitor, gateway, sim, smsSim, metrics] = [base, base + 1, base + 2, base + 3, base + 4, base + 5];
  const ready = path.join(dir, "ready.json");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: path.join(dir, "data"),
    LOCAL_NATS_PORT: String(nats),
    LOCAL_NATS_MONITOR_PORT: String(natsMonitor),
    GATEWAY_PORT: String(gateway),
    SIM_PORT: String(sim),
    // Six consecutive ports for the workers (the launcher checks them all before starting).
    LOCAL_METRICS_PORT: String(metrics),
    START_READY_FILE: ready,
    SKIP_BUILD: "1", // npm test has just run tsc -b
  };
  delete env.NATS_URL;
  delete env.DATABASE_URL;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  delete env.WECHAT_APP_ID;
  delete env.WECHAT_APP_SECRET;
  // Nothing SMS-related unless the test asks for it.
  for (const k of Object.keys(env)) if (k === "CHANNELS" || k === "SENDER_CHANNEL" || k.startsWith("TENCENT_") || k.startsWith("SMS_SIM_")) delete env[k];
  env.SMS_SIM_PORT = String(smsSim);
  Object.assign(env, extraEnv);
  const proc = spawn(process.execPath, ["scripts/start.mjs"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (b: Buffer) => (out += b.toString()));
  proc.stderr.on("data", (b: Buffer) => (out += b.toString()));
  t.teardown(async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGINT");
      await new Promise((r) => proc.once("exit", r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  await waitFor(() => existsSync(ready) || proc.exitCode !== null, "the system to start", 90_000, 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${out.slice(-3000)}`);
  });
  if (proc.exitCode !== null) {
    // The launcher's own lines and every error line first: the tail alone is the others' shutdown.
    const why = out.split("\n").filter((l) => /\[start\]|"level":"(error|fatal)"|"level":(50|60)\b/.test(l)).join("\n");
    throw new Error(`the launcher exited with ${proc.exitCode}:\n${why.slice(-6000)}\n--- last output ---\n${out.slice(-2000)}`);
  }
  const info = JSON.parse(readFileSync(ready, "utf8")) as { gateway: string; apiKey: string; natsUrl: string; simulator: string };
  t.match(out, /Swagger UI: +http:\/\/127\.0\.0\.1:\d+\/docs/, "prints the Swagger UI URL");
  t.match(out, new RegExp(`API key: +${info.apiKey}`), "prints the local API key");
  // The ten WeChat examples, and with SMS on the SMS example too.
  t.match(out, new RegExp(`templates: ${env.CHANNELS?.includes("sms") ? 11 : 10} seeded`));

  // The README's example publisher, as a newcomer runs it.
  const pub = spawnSync(process.execPath, ["scripts/publish-example.mjs", "order.paid", "en-US"], { cwd: root, env: { ...process.env, NATS_URL: info.natsUrl }, encoding: "utf8", timeout: 30_000 });
  t.equal(pub.status, 0, `publish:example succeeded\n${pub.stdout}${pub.stderr}`);
  const sendId = /send (snd_[0-9a-f]+)/.exec(pub.stdout)?.[1];
  t.ok(sendId, "printed the send id");

  const msgs = (await (await fetch(`${info.simulator}/_sim/messages?client_msg_id=${sendId}`)).json()) as { count: number; messages: { template_id: string }[] };
  t.equal(msgs.count, 1, "one message reached the simulator");
  t.equal(msgs.messages[0]?.template_id, "TPL_ORDER_PAID_EN");

  const r = await fetch(`${info.gateway}/notifications/sends/${sendId}`, { headers: { authorization: `Bearer ${info.apiKey}` } });
  t.equal(r.status, 200);
  const body = (await r.json()) as { record: { status: string } };
  t.equal(body.record.status, "success", "the gateway reads success");
  t.equal((await fetch(`${info.gateway}/notifications/sends/${sendId}`)).status, 401, "and refuses without the key");

  // The SQL send log: the search route finds the send by its order once projected.
  const auth = { authorization: `Bearer ${info.apiKey}` };
  const orderId = (body as unknown as { record: { order_id: string } }).record.order_id;
  const found = await waitFor(
    async () => {
      const s = await fetch(`${info.gateway}/notifications/sends?order_id=${encodeURIComponent(orderId)}`, { headers: auth });
      const page = (await s.json()) as { items?: { send_id: string; status: string }[] };
      return page.items?.find((i) => i.send_id === sendId && i.status === "success");
    },
    "the send in GET /notifications/sends",
    60_000,
    250,
  );
  t.equal(found.status, "success", "GET /notifications/sends?order_id= finds it at success");
  await more({ sendId: sendId!, natsUrl: info.natsUrl, gateway: info.gateway, auth, out: () => out, dataDir: path.join(dir, "data") });

  proc.kill("SIGINT");
  const code = await new Promise<number | null>((r) => proc.once("exit", (c) => r(c)));
  t.equal(code, 0, "Ctrl-C drains and stops everything");
  t.match(out, /nats stopped/);
  return out;
}

t.test("smoke - npm start brings the system up; the example event reaches WeChat and reads success", async (t) => {
  await startAndSend(t, undefined, async (s) => {
    t.match(s.out(), /Send log: +embedded PGlite in the gateway/, "says where the send log is");
    t.notMatch(s.out(), /projector +\|/, "no projector process without DATABASE_URL (the gateway projects)");
    t.ok(existsSync(path.join(s.dataDir, "sendlog")), "the embedded database lives under the data directory");
    // Nothing SMS-related was set: nothing SMS runs or exists.
    t.match(s.out(), /SMS: +off/, "says SMS is off");
    t.notMatch(s.out(), /sms-sim +\||sender-sms +\|/, "no SMS simulator or SMS sender process");
    t.equal((await fetch(`${s.gateway}/sms/status-report?token=x`, { method: "POST", headers: { "content-type": "application/json" }, body: "[]" })).status, 404, "no SMS callback route");
    const nc = await connect({ servers: s.natsUrl, noAsyncTraces: true });
    try {
      const names: string[] = [];
      for await (const c of (await jetstreamManager(nc)).consumers.list(Streams.sends)) names.push(c.name);
      t.ok(names.includes(Consumers.sender("wechat")), "sender-wechat exists");
      t.notOk(names.includes(Consumers.sender("sms")), "no sender-sms consumer");
    } finally {
      await nc.close();
    }
  });
});

t.test("smoke - CHANNELS=wechat,sms npm start sends an SMS through the simulator and its status report reaches delivered", async (t) => {
  const out = await startAndSend(
    t,
    undefined,
    async (s) => {
      t.match(s.out(), /SMS: +simulator at http:\/\/127\.0\.0\.1:\d+/, "the SMS simulator runs");
      const e = {
        id: `evt_smoke_sms_${process.pid}`,
        event: "ticket.expired",
        occurred_at: new Date().toISOString(),
        order_id: `O-SMS-${process.pid}`,
        ticket_id: `T-${process.pid}`,
        recipient: { openid: "oSmokeSms", locale: "zh-CN", phone: "+8613800138000" },
        data: { title: "West Lake", expired_at: "2026-11-24 16:00" },
      };
      const posted = await fetch(`${s.gateway}/notifications/events`, { method: "POST", headers: { ...s.auth, "content-type": "application/json" }, body: JSON.stringify(e) });
      t.equal(posted.status, 202, "the event is accepted");
      const smsId = sendIdFor({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id, channel: "sms" });
      const rec = await waitFor(
        async () => {
          const r = await fetch(`${s.gateway}/notifications/sends/${smsId}`, { headers: s.auth });
          const b = r.ok ? ((await r.json()) as { record: { status: string; phone?: string; receipt_status?: string } }) : null;
          return b?.record.status === "delivered" ? b.record : null;
        },
        "the SMS record delivered by the simulator's status report",
        60_000,
        250,
      );
      t.equal(rec.receipt_status, "SUCCESS:DELIVRD");
      t.equal(rec.phone, "+*********8000", "the record holds the number masked");
      t.notOk(s.out().includes("13800138000"), "no process printed the full number");
    },
    { CHANNELS: "wechat,sms" },
  );
  t.match(out, /sender-sms +\|/, "the SMS sender ran");
});

t.test("smoke - npm start with DATABASE_URL runs the projector as its own process against PostgreSQL", async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.stop());
  const out = await startAndSend(t, pg.url, async (s) => {
    t.match(s.out(), /projector +\|.*"msg":"projector ready"/, "the projector runs as a process of its own");
    t.match(s.out(), /Send log: +PostgreSQL postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres, filled by the projector/, "says where the send log is");
    t.notOk(existsSync(path.join(s.dataDir, "sendlog")), "no embedded PGlite is opened");
    // What an operator's psql sees.
    const db = await openDb({ databaseUrl: pg.url });
    try {
      const rows = await db.query<{ status: string }>("SELECT status FROM notification_events WHERE send_id = $1", [s.sendId]);
      t.same(rows, [{ status: "success" }], "the send is a row of notification_events in PostgreSQL");
    } finally {
      await db.close();
    }
  });
  t.match(out, /\[start\].* projector stopped/, "Ctrl-C stops the projector too");
});

t.test("smoke - npm start with a port already taken names it and starts nothing", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "notify-start-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = await freePortBlock(11);
  // Something else listens where sender-2's metrics would go.
  const squatter = createServer().listen(base + 7, "127.0.0.1");
  await once(squatter, "listening");
  t.teardown(() => new Promise<void>((r) => squatter.close(() => r())));
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: path.join(dir, "data"), SKIP_BUILD: "1", LOCAL_NATS_PORT: String(base), LOCAL_NATS_MONITOR_PORT: String(base + 1), GATEWAY_PORT: String(base + 2), SIM_PORT: String(base + 3), LOCAL_METRICS_PORT: String(base + 5) };
  for (const k of ["NATS_URL", "DATABASE_URL", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "CHANNELS"]) delete env[k];
  const r = spawnSync(process.execPath, ["scripts/start.mjs"], { cwd: root, env, encoding: "utf8", timeout: 60_000 });
  t.equal(r.status, 1, "exits 1");
  t.match(r.stderr + r.stdout, new RegExp(`port already in use: ${base + 7} \\(sender-2 metrics; set LOCAL_METRICS_PORT\\)`), "names the port, who needed it and the variable");
  t.notMatch(r.stdout, /NATS at|nats +\|/, "nothing was started");
});
