#!/usr/bin/env node
import { startSimulator } from "./simulator.js";
import { DEFAULT_APP_ID, DEFAULT_APP_SECRET } from "./state.js";

/**
 * `wechat-simulator`: the WeChat API simulator as a process. Configured by
 * SIM_PORT (8090), SIM_HOST (127.0.0.1), WECHAT_APP_ID, WECHAT_APP_SECRET,
 * SIM_LATENCY_MS (0), SIM_TOKEN_TTL_SEC (7200), SIM_TEMPLATE_DAILY_QUOTA (100000),
 * SIM_IP_WHITELIST (comma-separated caller IPs for the token endpoints; unset: any). Prints one JSON line with its URL when
 * listening; the app secret and tokens are never printed.
 */
function intEnv(name: string, def: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    process.stderr.write(`${JSON.stringify({ level: "fatal", msg: `${name} must be an integer between ${min} and ${max}`, got: raw })}\n`);
    process.exit(2);
  }
  return v;
}

const sim = await startSimulator({
  port: intEnv("SIM_PORT", 8090, 0, 65535),
  host: process.env.SIM_HOST || "127.0.0.1",
  appId: process.env.WECHAT_APP_ID || DEFAULT_APP_ID,
  appSecret: process.env.WECHAT_APP_SECRET || DEFAULT_APP_SECRET,
  latencyMs: intEnv("SIM_LATENCY_MS", 0, 0, 60_000),
  tokenTtlSec: intEnv("SIM_TOKEN_TTL_SEC", 7200, 1, 86_400),
  templateDailyQuota: intEnv("SIM_TEMPLATE_DAILY_QUOTA", 100_000, 0, 1_000_000_000),
  ipWhitelist: process.env.SIM_IP_WHITELIST ? process.env.SIM_IP_WHITELIST.split(",").map((s) => s.trim()).filter(Boolean) : null,
});
// Delivery receipts: pushed to the gateway's /wechat/callback when SIM_RECEIPT_URL is set.
if (process.env.SIM_RECEIPT_URL) {
  sim.setReceiptTarget({
    url: process.env.SIM_RECEIPT_URL,
    token: process.env.SIM_RECEIPT_TOKEN || process.env.WECHAT_CALLBACK_TOKEN || "",
    ...(process.env.SIM_RECEIPT_AES_KEY ? { encodingAesKey: process.env.SIM_RECEIPT_AES_KEY } : {}),
    delayMs: intEnv("SIM_RECEIPT_DELAY_MS", 100, 0, 60_000),
  });
}
process.stdout.write(`${JSON.stringify({ level: "info", service: "wechat-simulator", msg: "wechat simulator listening", url: sim.url, appid: sim.appId })}\n`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  void sim.close().then(() => {
    process.stdout.write(`${JSON.stringify({ level: "info", service: "wechat-simulator", msg: "wechat simulator stopped", signal, stats: sim.stats() })}\n`);
    process.exit(0);
  });
};
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
