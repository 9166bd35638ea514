/**
 * Gateway read path under a fixed arrival rate: template listing and preview (the same
 * rendering code the dispatcher uses, both from the watched template cache), and the SQL
 * send log's search (filtered, paged), order view and stats, all authenticated.
 *
 *   k6 run load/gateway-read.ts -e API_KEY=... [-e BASE_URL=http://127.0.0.1:3000]
 *          [-e RATE=100] [-e DURATION=1m] [-e P95_MS=100]
 *
 * RATE is requests per second for each scenario. k6 exits non-zero (99)
 * when a threshold fails.
 */
import http from "k6/http";
import { check } from "k6";
import exec from "k6/execution";
import type { Options } from "k6/options";
import { BASE_URL, PAID_DATA, droppedBelowOnePercent, num, params, preflight } from "./lib/common.ts";

const RATE = num("RATE", 100);
const DURATION = __ENV.DURATION || "1m";
const P95_MS = num("P95_MS", 100);
const LANGUAGES = ["zh-CN", "en", "en-US"];

export const options: Options = {
  scenarios: {
    templates: {
      executor: "constant-arrival-rate",
      exec: "listTemplates",
      rate: RATE,
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: Math.max(5, Math.ceil(RATE / 10)),
      maxVUs: Math.max(50, RATE * 2),
    },
    preview: {
      executor: "constant-arrival-rate",
      exec: "preview",
      rate: RATE,
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: Math.max(5, Math.ceil(RATE / 10)),
      maxVUs: Math.max(50, RATE * 2),
    },
    sends: {
      executor: "constant-arrival-rate",
      exec: "searchSends",
      rate: RATE,
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: Math.max(5, Math.ceil(RATE / 10)),
      maxVUs: Math.max(50, RATE * 2),
    },
    orders: {
      executor: "constant-arrival-rate",
      exec: "orderView",
      rate: Math.max(1, Math.ceil(RATE / 4)),
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: 5,
      maxVUs: Math.max(20, RATE),
    },
    stats: {
      executor: "constant-arrival-rate",
      exec: "sendStats",
      rate: Math.max(1, Math.ceil(RATE / 20)),
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: 2,
      maxVUs: 20,
    },
  },
  thresholds: {
    // Any failed request (network error or unexpected status) above 1% fails the run.
    http_req_failed: ["rate<0.01"],
    http_req_duration: [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:templates}": [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:preview}": [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:sends}": [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:orders}": [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:stats}": [`p(95)<${P95_MS}`],
    // More than 1% of arrivals the executor could not start means the target rate was not held.
    dropped_iterations: [droppedBelowOnePercent(RATE * 3 + Math.ceil(RATE / 4) + Math.ceil(RATE / 20), DURATION)],
    checks: ["rate>0.99"],
  },
};

export function setup(): void {
  preflight();
}

export function listTemplates(): void {
  const res = http.get(`${BASE_URL}/notifications/templates?event=order.paid`, params("templates"));
  check(res, { "templates: 200": (r) => r.status === 200 });
}

export function preview(): void {
  const language = LANGUAGES[exec.scenario.iterationInTest % LANGUAGES.length];
  const res = http.post(
    `${BASE_URL}/notifications/preview`,
    JSON.stringify({ event: "order.paid", channel: "wechat", language, data: PAID_DATA }),
    params("preview"),
  );
  check(res, { "preview: 200": (r) => r.status === 200 });
}

const STATUSES = ["success", "failed", "skipped", "queued"];

/** The operator's usual questions: by status, by status in the last hour, by traveller. */
export function searchSends(): void {
  const i = exec.scenario.iterationInTest;
  const hourAgo = new Date(Date.now() - 3600_000).toISOString();
  const query = [
    `status=${STATUSES[i % STATUSES.length]}&limit=50`,
    `status=failed&updated_from=${encodeURIComponent(hourAgo)}&limit=50`,
    `event=order.paid&channel=wechat&limit=20`,
    `openid=oLoad${i % 500}&limit=20`,
  ][i % 4];
  const res = http.get(`${BASE_URL}/notifications/sends?${query}`, params("sends"));
  check(res, { "sends: 200": (r) => r.status === 200 });
}

export function orderView(): void {
  const res = http.get(`${BASE_URL}/notifications/orders/${encodeURIComponent(`O-LOAD-${exec.scenario.iterationInTest % 1000}`)}`, params("orders"));
  check(res, { "orders: 200": (r) => r.status === 200 });
}

export function sendStats(): void {
  const res = http.get(`${BASE_URL}/notifications/sends/stats?interval=hour`, params("stats"));
  check(res, { "stats: 200": (r) => r.status === 200 });
}
