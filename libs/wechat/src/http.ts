import { performance } from "node:perf_hooks";
import { Pool, type Dispatcher } from "undici";
import { Deadlines, TimeoutError } from "@notify/contracts";
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
 * HTTP to the WeChat API over one keep-alive undici Pool (one origin). Every call is
 * bounded by `timeoutMs` end to end (connect, queueing, headers and body). It never
 * throws: failures come back classified, with URLs redacted (the access token travels in
 * the query string).
 *
 * Calls use `dispatch()` with a minimal handler rather than `request()`: no Readable body
 * stream and no AbortSignal per call (one sweep aborts overdue calls through the
 * handler's controller); the same connections and keep-alive, less CPU per call.
 */
export class WeChatHttp {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly origin: string;
  private readonly prefix: string;
  private closing: Promise<void> | null = null;
  /** End-to-end deadlines of the calls in flight: one interval, a tick of a quarter of the time-out (≤ 50 ms). */
  private readonly deadlines: Deadlines<{ deadline: number; onTimeout: () => void }>;

  constructor(private readonly o: WeChatHttpOptions) {
    this.deadlines = new Deadlines(o.timeoutMs, Math.max(1, Math.min(50, Math.floor(o.timeoutMs / 4))), (e) => e.onTimeout());
    const base = new URL(o.apiBase);
    this.origin = base.origin;
    this.prefix = base.pathname.replace(/\/+$/, "");
    this.ownsDispatcher = !o.dispatcher;
    this.dispatcher =
      o.dispatcher ??
      new Pool(this.origin, {
        connections: o.connections ?? 64,
        keepAliveTimeout: 10_000,
        keepAliveMaxTimeout: 60_000,
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
        connect: { timeout: o.timeoutMs },
      });
  }

  call(method: "GET" | "POST", path: string, body?: string): Promise<HttpResult> {
    const t0 = performance.now();
    return new Promise<HttpResult>((resolve) => {
      let controller: Dispatcher.DispatchController | null = null;
      let settled = false;
      let status = 0;
      const chunks: Buffer[] = [];
      const timedOut = (): HttpResult => ({ ok: false, code: "timeout", error: `WeChat did not answer within ${this.o.timeoutMs} ms`, durationMs: performance.now() - t0 });
      const finish = (r: HttpResult) => {
        if (settled) return;
        settled = true;
        this.deadlines.take(deadline);
        resolve(r);
      };
      const deadline = this.deadlines.add({
        deadline: 0,
        onTimeout: () => {
          finish(timedOut());
          controller?.abort(new TimeoutError(`no answer within ${this.o.timeoutMs} ms`));
        },
      });
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (c) => {
          controller = c;
          // Timed out while waiting for a connection: do not send it at all.
          if (settled) c.abort(new TimeoutError(`no answer within ${this.o.timeoutMs} ms`));
        },
        onResponseStart: (_c, statusCode) => {
          status = statusCode;
        },
        // Always take the body: an unread body keeps the socket from going back to the pool.
        onResponseData: (_c, chunk) => {
          chunks.push(chunk);
        },
        onResponseEnd: () => {
          const durationMs = performance.now() - t0;
          if (status !== 200) {
            finish({ ok: false, code: status >= 500 ? "http_5xx" : "http_4xx", httpStatus: status, error: `WeChat answered HTTP ${status}`, durationMs });
            return;
          }
          const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8");
          const parsed = parseObject(text);
          if (!parsed) finish({ ok: false, code: "bad_response", httpStatus: 200, error: "WeChat answered a body that is not a JSON object", durationMs });
          else finish({ ok: true, body: parsed, text, durationMs });
        },
        onResponseError: (_c, err) => {
          if (isTimeout(err)) finish(timedOut());
          else finish({ ok: false, code: "network", error: `WeChat request failed: ${describe(err)}`, durationMs: performance.now() - t0 });
        },
      };
      try {
        this.dispatcher.dispatch(
          { origin: this.origin, path: this.prefix + path, method, ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }) },
          handler,
        );
      } catch (err) {
        finish({ ok: false, code: "network", error: `WeChat request failed: ${describe(err)}`, durationMs: performance.now() - t0 });
      }
    });
  }

  close(): Promise<void> {
    this.deadlines.stop();
    this.closing ??= this.ownsDispatcher ? this.dispatcher.close().catch(() => undefined) : Promise.resolve();
    return this.closing;
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
