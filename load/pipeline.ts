/**
 * The whole pipeline driven over HTTP: POST /notifications/events → EVENTS → dispatcher
 * → SENDS → senders → WeChat (the simulator, or whatever WECHAT_API_BASE the senders use).
 *
 *   k6 run load/pipeline.ts -e API_KEY=... [-e BASE_URL=http://127.0.0.1:3000]
 *          [-e RATE=200] [-e DURATION=1m] [-e P95_MS=200]
 *          [-e PROBE_RATE=2] [-e DELIVERY_TIMEOUT_S=30] [-e DELIVERY_P95_MS=5000]
 *
 * Two scenarios run side by side:
 * - `ingest`: RATE events per second, each with a unique id and order id (so none is a
 *   duplicate), accepted by the gateway onto the bus.
 * - `delivery`: PROBE_RATE events per second that are followed to the end: the script
 *   derives each send_id (as the dispatcher does) and polls GET /notifications/sends/:id
 *   until the record is final. `notify_delivered` is the share that reached `success`,
 *   `notify_delivery_ms` the time from accepted to success as seen by the poller (100 ms
 *   resolution; the services' own histogram has the exact end-to-end latency).
 * k6 exits non-zero (99) when a threshold fails.
 */
import http from "k6/http";
import { check, sleep } from "k6";
import crypto from "k6/crypto";
import exec from "k6/execution";
import { Rate, Trend } from "k6/metrics";
import type { Options } from "k6/options";
import { BASE_URL, PAID_DATA, droppedBelowOnePercent, num, params, preflight, runId } from "./lib/common.ts";
import { orderSendId } from "./lib/send-id.ts";

const RATE = num("RATE", 200);
const DURATION = __ENV.DURATION || "1m";
const P95_MS = num("P95_MS", 200);
const PROBE_RATE = num("PROBE_RATE", 2);
const DELIVERY_TIMEOUT_S = num("DELIVERY_TIMEOUT_S", 30);
const DELIVERY_P95_MS = num("DELIVERY_P95_MS", 5000);
const POLL_S = 0.1;
const EVENT = "order.paid";
const FINAL = ["success", "failed", "dead", "skipped", "rejected"];

const delivered = new Rate("notify_delivered");
const deliveryMs = new Trend("notify_delivery_ms", true);

export const options: Options = {
  scenarios: {
    ingest: {
      executor: "constant-arrival-rate",
      exec: "ingest",
      rate: RATE,
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(100, RATE * 2),
    },
    delivery: {
      executor: "constant-arrival-rate",
      exec: "delivery",
      rate: PROBE_RATE,
      timeUnit: "1s",
      duration: DURATION,
      // Each probe waits for its record: enough VUs for PROBE_RATE × timeout in flight.
      preAllocatedVUs: Math.ceil(PROBE_RATE * 5),
      maxVUs: Math.ceil(PROBE_RATE * DELIVERY_TIMEOUT_S) + 5,
      gracefulStop: `${DELIVERY_TIMEOUT_S + 5}s`,
    },
  },
  thresholds: {
    // Polls answered 404 (record not written yet) are expected, not failures (see poll()).
    http_req_failed: ["rate<0.01"],
    "http_req_failed{endpoint:events}": ["rate<0.01"],
    "http_req_duration{endpoint:events}": [`p(95)<${P95_MS}`],
    dropped_iterations: [droppedBelowOnePercent(RATE, DURATION)],
    notify_delivered: ["rate>0.99"],
    notify_delivery_ms: [`p(95)<${DELIVERY_P95_MS}`],
    checks: ["rate>0.99"],
  },
};

interface SetupData {
  run: string;
}

export function setup(): SetupData {
  preflight();
  return { run: runId() };
}

function envelope(run: string): { id: string; order_id: string; body: string } {
  const scenario = exec.scenario.name;
  const n = exec.scenario.iterationInTest;
  const id = `evt_${run}_${scenario}_${n}`;
  const order_id = `LT-${run}-${scenario}-${n}`;
  const body = JSON.stringify({
    id,
    event: EVENT,
    occurred_at: new Date().toISOString(),
    order_id,
    ticket_id: null,
    recipient: { openid: `oLoad${n % 1000}`, locale: n % 2 === 0 ? "zh-CN" : "en-US" },
    data: PAID_DATA,
  });
  return { id, order_id, body };
}

function publish(body: string): boolean {
  const res = http.post(`${BASE_URL}/notifications/events`, body, params("events"));
  return check(res, {
    "events: accepted (2xx)": (r) => r.status >= 200 && r.status < 300,
    "events: not a duplicate": (r) => !isDuplicate(r.body),
  });
}

/** The gateway answers `{ duplicate: true }` when JetStream already stored this event id. */
function isDuplicate(body: unknown): boolean {
  if (typeof body !== "string" || body === "") return false;
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === "object" && parsed !== null && (parsed as { duplicate?: unknown }).duplicate === true;
  } catch {
    return false;
  }
}

/** The record's status from GET /notifications/sends/:send_id ({ record: { status } }). */
function statusOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const record = (body as { record?: { status?: unknown } }).record;
  const status = record && typeof record === "object" ? record.status : (body as { status?: unknown }).status;
  return typeof status === "string" ? status : undefined;
}

function poll(sendId: string): string | undefined {
  const res = http.get(
    `${BASE_URL}/notifications/sends/${sendId}`,
    params("sends", { responseCallback: http.expectedStatuses(200, 404) }),
  );
  return res.status === 200 ? statusOf(res.json()) : undefined;
}

export function ingest(data: SetupData): void {
  publish(envelope(data.run).body);
}

export function delivery(data: SetupData): void {
  const { order_id, body } = envelope(data.run);
  const sendId = orderSendId((s) => crypto.sha256(s, "hex"), EVENT, order_id);
  const started = Date.now();
  if (!publish(body)) {
    delivered.add(false);
    return;
  }
  const deadline = started + DELIVERY_TIMEOUT_S * 1000;
  let status: string | undefined;
  while (Date.now() < deadline) {
    status = poll(sendId);
    if (status !== undefined && FINAL.indexOf(status) >= 0) break;
    sleep(POLL_S);
  }
  const ok = status === "success";
  delivered.add(ok, { final_status: status || "timeout" });
  if (ok) deliveryMs.add(Date.now() - started);
}
