import { performance } from "node:perf_hooks";
import { Agent, type Dispatcher } from "undici";
import { redactUrl } from "@notify/log";

/** What one call ended in: a WeChat errcode, or how the HTTP exchange failed. */
export type CallCode = number | "timeout" | "network" | "http_4xx" | "http_5xx" | "bad_response";
export type WeChatEndpoint = "send" | "token";
/** Metrics hook, called once per HTTP call to WeChat. */
export type OnCall = (code: CallCode, durationMs: number, endpoint: WeChatEndpoint) => void;

export type HttpResult =
  | { ok: true; body: Record<string, unknown>; text: string; durationMs: number }
  | { ok: false; code: Exclude<CallCode, number>; httpStatus?: number; error: string; durationMs: number };

export interface WeChatHttpOptions {
  apiBase: string;
  timeoutMs: number;
  /** Sockets to the WeChat API (default 64). */
  connections?: number;
  /** A caller-owned dispatcher (undici MockAgent in tests); not closed by close(). */
  dispatcher?: Dispatcher;
}

/**
 * HTTP to the WeChat API over one keep-alive undici Agent. Every call is bounded by
 * `timeoutMs` end to end (connect, headers and body). It never throws: failures come
 * back classified, with URLs redacted (the access token travels in the query string).
 */
export class WeChatHttp {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly origin: string;
  private readonly prefix: string;
  private closing: Promise<void> | null = null;
  private readonly deadlines: Deadlines;

  constructor(private readonly o: WeChatHttpOptions) {
    this.deadlines = new Deadlines(o.timeoutMs);
    const base = new URL(o.apiBase);
    this.origin = base.origin;
    this.prefix = base.pathname.replace(/\/+$/, "");
    this.ownsDispatcher = !o.dispatcher;
    this.dispatcher =
      o.dispatcher ??
      new Agent({
        connections: o.connections ?? 64,
        keepAliveTimeout: 10_000,
        keepAliveMaxTimeout: 60_000,
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
        connect: { timeout: o.timeoutMs },
      });
  }

  async call(method: "GET" | "POST", path: string, body?: string): Promise<HttpResult> {
    const t0 = performance.now();
    const signal = this.deadlines.start();
    try {
      const res = await this.dispatcher.request({
        origin: this.origin,
        path: this.prefix + path,
        method,
        signal,
        ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
      });
      // Always read the body: an unread body keeps the socket from going back to the pool.
      const text = await res.body.text();
      const durationMs = performance.now() - t0;
      if (res.statusCode !== 200) {
        return { ok: false, code: res.statusCode >= 500 ? "http_5xx" : "http_4xx", httpStatus: res.statusCode, error: `WeChat answered HTTP ${res.statusCode}`, durationMs };
      }
      const parsed = parseObject(text);
      if (!parsed) return { ok: false, code: "bad_response", httpStatus: 200, error: "WeChat answered a body that is not a JSON object", durationMs };
      return { ok: true, body: parsed, text, durationMs };
    } catch (err) {
      const durationMs = performance.now() - t0;
      if (signal.aborted || isTimeout(err)) {
        return { ok: false, code: "timeout", error: `WeChat did not answer within ${this.o.timeoutMs} ms`, durationMs };
      }
      return { ok: false, code: "network", error: `WeChat request failed: ${describe(err)}`, durationMs };
    } finally {
      this.deadlines.end(signal);
    }
  }

  close(): Promise<void> {
    this.deadlines.stop();
    this.closing ??= this.ownsDispatcher ? this.dispatcher.close().catch(() => undefined) : Promise.resolve();
    return this.closing;
  }
}

/**
 * End-to-end time-outs for calls that all share one duration: an AbortController per call
 * and one interval that aborts the expired ones, oldest first (calls start in deadline
 * order). AbortSignal.timeout() would arm a timer and a finalization entry per call. A
 * call is aborted at most a tick (a quarter of the time-out, ≤ 50 ms) after its deadline.
 */
class Deadlines {
  private readonly live = new Map<AbortSignal, { ac: AbortController; deadline: number }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;

  constructor(private readonly timeoutMs: number) {
    this.tickMs = Math.max(1, Math.min(50, Math.floor(timeoutMs / 4)));
  }

  start(): AbortSignal {
    const ac = new AbortController();
    this.live.set(ac.signal, { ac, deadline: performance.now() + this.timeoutMs });
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.tickMs);
      this.timer.unref();
    }
    return ac.signal;
  }

  end(signal: AbortSignal): void {
    this.live.delete(signal);
  }

  private sweep(): void {
    const now = performance.now();
    for (const [signal, e] of this.live) {
      if (e.deadline > now) break;
      this.live.delete(signal);
      e.ac.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
    }
    if (this.live.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT", "ETIMEDOUT"]);

function isTimeout(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return !!e && (e.name === "TimeoutError" || (typeof e.code === "string" && TIMEOUT_CODES.has(e.code)));
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const msg = typeof e?.message === "string" ? e.message : String(err);
  return redactUrl(typeof e?.code === "string" ? `${e.code} ${msg}` : msg);
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
