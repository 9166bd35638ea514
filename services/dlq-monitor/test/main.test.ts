import t from "tap";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Status } from "@notify/contracts";
import { failJobs, queueJob, startEnv, startWebhookServer, waitFor } from "../test-support/helpers.js";

// The service as operators run it: src/main.ts in its own process, configured only by env.
const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const ROOT = path.resolve(path.dirname(MAIN), "../../..");
const NATS_TOKEN = "natsTokenSecret789";
const HOOK_SECRET = "hookPathSecret246";
const HOOK_KEY = "hookQuerySecret135";

/** Node flags that let a child run TypeScript the way tap runs this file. */
function tsNodeArgs(): string[] {
  const ts = process.execArgv.filter((a) => a.includes("@tapjs/typescript"));
  return [...ts, "--conditions=development"];
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function startMain(env: Record<string, string>): Proc {
  const { NODE_OPTIONS: _drop, ...base } = process.env;
  const child = spawn(process.execPath, [...tsNodeArgs(), MAIN], { cwd: ROOT, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

function sample(metrics: string, name: string, labels: Record<string, string>): number {
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(name + "{")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").pop());
  }
  return 0;
}

t.test("dlq-monitor - the service process dead-letters, alerts, serves /metrics and drains on SIGTERM", async (t) => {
  const env = await startEnv(["wechat"], { extraConfig: `authorization { token: "${NATS_TOKEN}" }` }, NATS_TOKEN);
  t.teardown(() => env.close());
  const hook = await startWebhookServer();
  t.teardown(() => hook.close());

  const proc = startMain({
    NATS_URL: env.server.url,
    NATS_TOKEN,
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    LOG_LEVEL: "debug",
    ALERT_WEBHOOK_URL: `${hook.url}/hooks/${HOOK_SECRET}?key=${HOOK_KEY}`,
    ALERT_WEBHOOK_RETRIES: "1",
    ALERT_WEBHOOK_BACKOFF_MS: "50",
    ALERT_CONSECUTIVE_FAILURES: "0",
    DLQ_CHECK_INTERVAL_MS: "500",
  });
  t.teardown(() => {
    if (proc.child.exitCode === null) proc.child.kill("SIGKILL");
  });
  // Transpiling main.ts on a busy machine is slow: a generous deadline, and the output on failure.
  const base = await waitFor(() => /"metrics":"(http:[^"]+)\/metrics"/.exec(proc.out())?.[1], '"dlq-monitor ready"', 90_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${proc.out().slice(-4000)}`);
  });

  t.equal((await get(`${base}/healthz`)).status, 200, "/healthz");
  t.equal((await get(`${base}/readyz`)).status, 200, "/readyz: NATS connected, consumer reachable");
  const before = (await get(`${base}/metrics`)).body;
  t.equal(sample(before, "notifications_dlq_total", { channel: "wechat", reason: "max_deliveries" }), 0, "no dead letters yet");

  const q = await queueJob(env, "wechat");
  await failJobs(env, "wechat", [q]);
  await waitFor(async () => (await env.records.get(q.job.send_id))?.record.status === Status.dead, "record dead");
  await waitFor(() => hook.requests.length === 1, "webhook called");

  const after = (await get(`${base}/metrics`)).body;
  t.equal(sample(after, "notifications_dlq_total", { channel: "wechat", reason: "max_deliveries" }), 1, "notifications_dlq_total moved");
  t.equal(sample(after, "notifications_sent_total", { channel: "wechat", status: "dead" }), 1, "notifications_sent_total{status=dead} moved");
  t.equal(sample(after, "notifications_alerts_total", { kind: "consecutive_failures", channel: "wechat" }), 1, "notifications_alerts_total moved");
  t.match(after, /notifications_dlq_depth\{[^}]*\} 1/, "DLQ depth gauge");
  t.match(after, /notifications_consumer_pending\{[^}]*consumer="dlq-monitor"[^}]*\} 0/, "advisory consumer lag gauge");
  t.match(after, /service="dlq-monitor"/, "labelled with the service");

  proc.child.kill("SIGTERM");
  t.equal(await proc.exited, 0, "SIGTERM drains and exits 0");
  const out = proc.out();
  t.match(out, /"msg":"stopped"/, "logged the drain");
  t.match(out, /"level":"error".*ALERT consecutive_failures/, "the alert is logged at error");
  t.match(out, /max deliveries reached: job dead-lettered/);
  for (const secret of [NATS_TOKEN, HOOK_SECRET, HOOK_KEY]) t.notMatch(out, secret, "captured logs hold no secret");
  for (const line of out.split("\n").filter(Boolean)) {
    if (!line.startsWith("{")) continue;
    t.doesNotThrow(() => JSON.parse(line), "JSON log line");
  }
});

t.test("dlq-monitor - a bad variable stops the process at start with its name, not its value", async (t) => {
  const proc = startMain({ DLQ_ALERT_THRESHOLD: "lots", ALERT_WEBHOOK_URL: `hooks.example.com/${HOOK_SECRET}` });
  t.equal(await proc.exited, 1);
  t.match(proc.out(), /DLQ_ALERT_THRESHOLD/);
  t.match(proc.out(), /ALERT_WEBHOOK_URL: must be an http\(s\) URL/);
  t.notMatch(proc.out(), HOOK_SECRET, "the webhook URL is not echoed");
});
