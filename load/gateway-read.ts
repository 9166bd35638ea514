/**
 * Gateway read path under a fixed arrival rate: template listing and preview (the same
 * rendering code the dispatcher uses), both authenticated with the bearer key.
 *
 *   k6 run load/gateway-read.ts -e API_KEY=... [-e BASE_URL=http://127.0.0.1:3000]
 *          [-e RATE=100] [-e DURATION=1m] [-e P95_MS=100]
 *
 * RATE is requests per second for each of the two scenarios. k6 exits non-zero (99)
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
  },
  thresholds: {
    // Any failed request (network error or unexpected status) above 1% fails the run.
    http_req_failed: ["rate<0.01"],
    http_req_duration: [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:templates}": [`p(95)<${P95_MS}`],
    "http_req_duration{endpoint:preview}": [`p(95)<${P95_MS}`],
    // More than 1% of arrivals the executor could not start means the target rate was not held.
    dropped_iterations: [droppedBelowOnePercent(RATE, DURATION)],
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
