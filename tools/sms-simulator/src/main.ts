#!/usr/bin/env node
import { startSmsSimulator } from "./simulator.js";
import { DEFAULT_SDK_APP_ID, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY } from "./state.js";

/**
 * `sms-simulator`: the Tencent Cloud SMS simulator as a process. SMS_SIM_PORT (8091),
 * SMS_SIM_HOST (127.0.0.1), TENCENT_SECRET_ID, TENCENT_SECRET_KEY, TENCENT_SMS_SDK_APP_ID,
 * SMS_SIM_REPORT_URL (status reports are pushed there), SMS_SIM_REPORT_DELAY_MS (50).
 * Prints one JSON line with its URL; the secret key is never printed.
 */
function intEnv(name: string, def: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0 || v > max) {
    process.stderr.write(`${JSON.stringify({ level: "fatal", msg: `${name} must be an integer between 0 and ${max}`, got: raw })}\n`);
    process.exit(2);
  }
  return v;
}

const reportUrl = process.env.SMS_SIM_REPORT_URL || undefined;
const sim = await startSmsSimulator({
  port: intEnv("SMS_SIM_PORT", 8091, 65535),
  host: process.env.SMS_SIM_HOST || "127.0.0.1",
  secretId: process.env.TENCENT_SECRET_ID || DEFAULT_SECRET_ID,
  secretKey: process.env.TENCENT_SECRET_KEY || DEFAULT_SECRET_KEY,
  sdkAppId: process.env.TENCENT_SMS_SDK_APP_ID || DEFAULT_SDK_APP_ID,
  reportDelayMs: intEnv("SMS_SIM_REPORT_DELAY_MS", 50, 600_000),
  ...(reportUrl ? { reportUrl } : {}),
});
// The report URL may carry the callback's shared token: print only its origin and path.
const shownReportUrl = reportUrl ? new URL(reportUrl).origin + new URL(reportUrl).pathname : null;
process.stdout.write(`${JSON.stringify({ level: "info", service: "sms-simulator", msg: "sms simulator listening", url: sim.url, sdk_app_id: sim.sdkAppId, report_url: shownReportUrl })}\n`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  void sim.close().then(() => {
    process.stdout.write(`${JSON.stringify({ level: "info", service: "sms-simulator", msg: "sms simulator stopped", signal, stats: sim.stats() })}\n`);
    process.exit(0);
  });
};
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
