/** Settings and helpers shared by the k6 scripts. Everything comes from `-e NAME=value`. */
import http from "k6/http";
import type { RefinedParams, ResponseType } from "k6/http";

export const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:3000").replace(/\/+$/, "");
export const API_KEY = __ENV.API_KEY || "";

export function num(name: string, fallback: number): number {
  const raw = __ENV[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`-e ${name}=${raw}: expected a positive number`);
  return v;
}

/** A k6 duration ("90s", "2m", "1h30m", "500ms") in seconds. */
export function seconds(duration: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  let matched = "";
  for (let m = re.exec(duration); m !== null; m = re.exec(duration)) {
    total += Number(m[1]) * (unit[m[2] ?? "s"] ?? 1);
    matched += m[0];
  }
  if (matched !== duration || total <= 0) throw new Error(`-e DURATION=${duration}: expected a k6 duration such as 90s, 2m or 1h30m`);
  return total;
}

/** Threshold expression: fewer dropped arrivals than 1% of `rate` × `duration`. */
export function droppedBelowOnePercent(rate: number, duration: string): string {
  return `count<${Math.max(1, Math.ceil(rate * seconds(duration) * 0.01))}`;
}

/** Request parameters with the bearer key and a tag that thresholds filter on. */
export function params(endpoint: string, extra: RefinedParams<ResponseType> = {}): RefinedParams<ResponseType> {
  return {
    ...extra,
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json", ...(extra.headers || {}) },
    tags: { endpoint, ...(extra.tags || {}) },
  };
}

/** A realistic order.paid payload (the fields the example templates render). */
export const PAID_DATA = { amount: 128.5, title: "West Lake night tour" };

/**
 * Fails the run before any load when the gateway is unreachable, the key is wrong or no
 * order.paid template exists (the dispatcher would then record every event `skipped`).
 */
export function preflight(): void {
  if (!API_KEY) throw new Error("missing API key: run with -e API_KEY=<one of GATEWAY_API_KEYS>");
  const ready = http.get(`${BASE_URL}/readyz`, { tags: { endpoint: "preflight" } });
  if (ready.status !== 200) throw new Error(`gateway not ready at ${BASE_URL}/readyz (HTTP ${ready.status})`);
  const preview = http.post(
    `${BASE_URL}/notifications/preview`,
    JSON.stringify({ event: "order.paid", channel: "wechat", language: "zh-CN", data: PAID_DATA }),
    params("preflight"),
  );
  if (preview.status === 401) throw new Error("the gateway rejected the API key (401)");
  if (preview.status === 404) throw new Error("no order.paid/wechat template: seed the example templates first (npm start does)");
  if (preview.status !== 200) throw new Error(`preview failed: HTTP ${preview.status} ${String(preview.body)}`);
}

/** A short id unique to this run, so repeated runs never collide with earlier events. */
export function runId(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}
