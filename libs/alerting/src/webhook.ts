import { Agent, RetryAgent, request, type Dispatcher } from "undici";
import { backoffDelay, type AlertFact } from "@notify/contracts";
import type { Logger } from "@notify/log";

export interface WebhookOptions {
  url: string;
  /** Per attempt: connect, headers, body. */
  timeoutMs: number;
  /** Attempts after the first one. */
  retries: number;
  /** First retry delay; doubles per retry, capped at `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs?: number;
  /** Alerts waiting for delivery; the oldest is dropped (and logged) beyond this. */
  maxQueue?: number;
  /** How long close() waits for queued alerts before aborting them. */
  drainMs?: number;
  log: Logger;
  /** The dispatcher the retries wrap (tests); an undici Agent by default. */
  dispatcher?: Dispatcher;
  /** Outcome of each alert: delivered, given up after every attempt, or dropped from a full queue. */
  onOutcome?: (outcome: "delivered" | "failed" | "dropped", attempts: number) => void;
}

/** Why a webhook delivery failed; `retryable` for network errors, time-outs, 408, 429 and 5xx. */
export class WebhookError extends Error {
  override name = "WebhookError";
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
    opts?: ErrorOptions,
  ) {
    super(message, opts);
  }
}

/**
 * Only the origin of a webhook URL is ever logged: chat webhooks (Slack, WeCom, Feishu)
 * carry their secret in the path or the query string.
 */
export function webhookOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "[invalid url]";
  }
}

/** Answers worth another attempt: 408, 429 and every 5xx. */
const RETRY_STATUSES = [408, 429, ...Array.from({ length: 100 }, (_, i) => 500 + i)];
const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
const NETWORK_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "ENOTFOUND", "ENETDOWN", "ENETUNREACH", "EHOSTDOWN", "EHOSTUNREACH", "EPIPE", "UND_ERR_SOCKET", ...TIMEOUT_CODES]);

/** undici's errors as a WebhookError: the status of a refused answer, or a short network reason. */
function toWebhookError(err: unknown, timeoutMs: number): WebhookError {
  if (err instanceof WebhookError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (typeof e.statusCode === "number") {
    const s = e.statusCode;
    return new WebhookError(`HTTP ${s}`, s, s === 408 || s === 429 || s >= 500, { cause: err });
  }
  if (e.code && TIMEOUT_CODES.has(e.code)) return new WebhookError(`timed out after ${timeoutMs}ms (${e.code})`, null, true, { cause: err });
  // The URL is never part of the message: undici errors do not carry it, and we add nothing.
  const message = e.code ? `${e.code}: ${e.message ?? ""}` : (e.message ?? String(err));
  return new WebhookError(message, null, e.code === undefined || NETWORK_CODES.has(e.code), { cause: err });
}

/**
 * POSTs alert facts to an operator's webhook, in the background: `enqueue()` returns at
 * once, so a slow or dead webhook never holds the advisory loop. One delivery at a time,
 * each with a time-out and retries with exponential backoff; then it gives up and logs.
 */
export class AlertWebhook {
  private readonly queue: AlertFact[] = [];
  private running: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private closing: Promise<void> | null = null;
  private readonly origin: string;
  /** The alert being delivered (one at a time) and its attempt count, for the logs. */
  private current: AlertFact | null = null;
  private readonly attempts = new Map<AlertFact, number>();

  private readonly agent: Dispatcher;
  private readonly ownAgent: Agent | null;

  constructor(private readonly opts: WebhookOptions) {
    this.origin = webhookOrigin(opts.url);
    this.ownAgent = opts.dispatcher ? null : new Agent({ connect: { timeout: opts.timeoutMs } });
    // undici's RetryAgent re-sends the POST; the schedule and the log lines are ours (retry()).
    this.agent = new RetryAgent(opts.dispatcher ?? this.ownAgent!, {
      maxRetries: Math.max(0, opts.retries),
      methods: ["POST"],
      statusCodes: RETRY_STATUSES,
      retry: (err, { state }, cb) => this.retry(err, state.counter, cb),
    });
  }

  /** Alerts waiting or being delivered. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  enqueue(alert: AlertFact): void {
    if (this.closing) return;
    const max = this.opts.maxQueue ?? 100;
    if (this.queue.length >= max) {
      const dropped = this.queue.shift();
      this.opts.log.error({ webhook: this.origin, alert: dropped }, "alert webhook queue full: oldest alert dropped");
      this.opts.onOutcome?.("dropped", 0);
    }
    this.queue.push(alert);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when the queue is empty (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops accepting alerts, waits up to `drainMs` for the queue, then aborts. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const drainMs = this.opts.drainMs ?? 5000;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, drainMs);
        timer.unref();
      });
      await Promise.race([this.idle(), deadline]);
      clearTimeout(timer);
      this.queue.length = 0;
      this.abort.abort(new Error("alert webhook closed"));
      await this.idle().catch(() => undefined);
      await this.ownAgent?.close().catch(() => undefined);
    })();
    return this.closing;
  }

  private async drain(): Promise<void> {
    for (let alert = this.queue.shift(); alert; alert = this.queue.shift()) {
      this.current = alert;
      await this.deliver(alert);
      this.attempts.delete(alert);
      this.current = null;
    }
  }

  private async deliver(alert: AlertFact): Promise<void> {
    const { timeoutMs } = this.opts;
    const log = this.log(alert);
    try {
      const res = await request(this.opts.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "notify-alerting" },
        body: JSON.stringify(alert),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: this.abort.signal,
        dispatcher: this.agent,
      });
      await res.body.dump().catch(() => undefined);
      // Refusals that are not retried (4xx) come back as an answer, not an error.
      if (res.statusCode < 200 || res.statusCode >= 300) throw new WebhookError(`HTTP ${res.statusCode}`, res.statusCode, false);
      const attempt = this.attempts.get(alert) ?? 1;
      log.info({ attempt, status: res.statusCode }, "alert webhook delivered");
      this.opts.onOutcome?.("delivered", attempt);
    } catch (err) {
      const e = toWebhookError(err, timeoutMs);
      const attempt = this.attempts.get(alert) ?? 1;
      log.error({ attempt, status: e.status, error: e.message }, "alert webhook failed: giving up");
      this.opts.onOutcome?.("failed", attempt);
    }
  }

  /** The retry decision RetryAgent asks for after each failed attempt (`counter` = attempts made). */
  private retry(err: Error, counter: number, cb: (err?: Error | null) => void): void {
    const alert = this.current;
    const e = toWebhookError(err, this.opts.timeoutMs);
    if (alert) this.attempts.set(alert, counter);
    if (!e.retryable || counter > this.opts.retries || this.abort.signal.aborted) return cb(err);
    const delay = backoffDelay(counter, { baseMs: this.opts.backoffMs, maxMs: this.opts.maxBackoffMs ?? 30_000, jitter: 0 });
    if (alert) this.log(alert).warn({ attempt: counter, status: e.status, error: e.message, retry_in_ms: delay }, "alert webhook failed: retrying");
    if (alert) this.attempts.set(alert, counter + 1);
    const signal = this.abort.signal;
    const timer = setTimeout(done, delay);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      cb(signal.aborted ? err : null);
    }
  }

  private log(alert: AlertFact): Logger {
    return this.opts.log.child({ webhook: this.origin, alert_kind: alert.kind, channel: alert.channel });
  }
}
