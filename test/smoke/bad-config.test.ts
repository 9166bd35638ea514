import t from "tap";
import { runToExit, toolMainJs, type ServiceName } from "../support/processes.js";

// Every main.ts goes through @notify/runtime: a bad variable stops it before anything
// connects, with exit code 1 and one line that names the variable (no stack trace).
const cases: { service: ServiceName; env: Record<string, string>; line: RegExp }[] = [
  { service: "gateway", env: { GATEWAY_API_KEYS: "k", GATEWAY_PORT: "abc" }, line: /^gateway: invalid configuration: GATEWAY_PORT: must be a port number \(0-65535\) \(got "abc"\)$/ },
  { service: "dispatcher", env: { METRICS_PORT: "abc" }, line: /^dispatcher: invalid configuration: METRICS_PORT: must be a port number \(0-65535\) \(got "abc"\)$/ },
  { service: "sender", env: { METRICS_PORT: "70000" }, line: /^sender: invalid configuration: METRICS_PORT: must be a port number \(0-65535\) \(got "?70000"?\)$/ },
  { service: "dlq-monitor", env: { METRICS_PORT: "abc" }, line: /^dlq-monitor: invalid configuration: METRICS_PORT: must be a port number \(0-65535\) \(got "abc"\)$/ },
  { service: "projector", env: { METRICS_PORT: "abc" }, line: /^projector: invalid configuration: METRICS_PORT: must be a port number \(0-65535\) \(got "abc"\)$/ },
  // The alerting unit's variables (hosted by the DLQ monitor): the webhook URL is checked by its pattern, its value never echoed.
  { service: "dlq-monitor", env: { ALERT_WEBHOOK_URL: "ftp://hooks.example.com/hookSecret42" }, line: /^dlq-monitor: invalid configuration: ALERT_WEBHOOK_URL: must be an http\(s\) URL \(got "\[redacted\]"\)$/ },
  // A check beyond the schema (the retry schedule against WeChat's 10-minute window) reads the same way.
  { service: "sender", env: { RETRY_BASE_MS: "120000", RETRY_MAX_MS: "300000" }, line: /^sender: invalid configuration: RETRY_BASE_MS, RETRY_MAX_MS, SENDER_ACK_WAIT_MS, WECHAT_TIMEOUT_MS: the last retry can come \d+ s after the first/ },
  // A removed variable is refused by name, with its replacement, not silently ignored.
  { service: "sender", env: { SENDER_ACK_BACKOFF_MS: "15000,30000" }, line: /^sender: invalid configuration: SENDER_ACK_BACKOFF_MS: removed .*SENDER_ACK_WAIT_MS/ },
  // Two bad variables: both named, still one line.
  { service: "dispatcher", env: { METRICS_PORT: "-1", LOG_LEVEL: "loud" }, line: /^dispatcher: invalid configuration: .*METRICS_PORT: must be a port number.*; .*LOG_LEVEL|^dispatcher: invalid configuration: .*LOG_LEVEL.*; .*METRICS_PORT: must be a port number/ },
];

for (const c of cases) {
  t.test(`${c.service} - ${Object.keys(c.env).join(", ")}: exit 1 with one line naming it`, async (t) => {
    // NATS_URL points nowhere: the config check must come before any connection attempt.
    const run = await runToExit(c.service, { NATS_URL: "nats://127.0.0.1:1", ...c.env });
    t.equal(run.code, 1, "exit code 1");
    t.equal(run.stdout, "", "nothing on stdout");
    const lines = run.stderr.split("\n").filter(Boolean);
    t.equal(lines.length, 1, `one line on stderr:\n${run.stderr}`);
    t.match(lines[0], c.line);
    t.notMatch(run.stderr, /\n\s+at /, "no stack trace");
  });
}

// The simulators (tools/*) have no NATS and no schema: a bad number stops them the same
// way, one line naming the variable, exit code 2 (a usage error).
const simulators: { tool: "wechat-simulator" | "sms-simulator"; name: string }[] = [
  { tool: "wechat-simulator", name: "SIM_PORT" },
  { tool: "sms-simulator", name: "SMS_SIM_PORT" },
];
for (const s of simulators) {
  t.test(`${s.tool} - ${s.name}=abc: exit 2 with one line naming it`, async (t) => {
    const run = await runToExit("gateway", { [s.name]: "abc" }, 20_000, toolMainJs(s.tool));
    t.equal(run.code, 2, "exit code 2");
    t.equal(run.stdout, "", "nothing on stdout");
    const lines = run.stderr.split("\n").filter(Boolean);
    t.equal(lines.length, 1, `one line on stderr:\n${run.stderr}`);
    t.match(lines[0], new RegExp(`${s.name} must be an integer`));
    t.notMatch(run.stderr, /\n\s+at /, "no stack trace");
  });
}
