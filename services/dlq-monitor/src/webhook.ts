import { request, type Dispatcher } from "undici";
import { backoffDelay, type AlertFact } from "@notify/contracts";
import type { Logger } from "@notify/log";

export interface WebhookOptions {
  url: string;
  /** Per attempt: connect + headers + body. */
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
  /** undici dispatcher (an Agent, or a MockAgent in unit tests). */
  dispatcher?: Dispatcher;
  /** Outcome of each alert: delivered, or given up after every attempt. */
  onOutcome?: (outcome: "delivered" | "failed" | "dropped", attempts: number) => void;
}

/** A webhook answer that is worth retrying: network errors, time-outs, 408, 429, 5xx. */
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

  constructor(private readonly opts: WebhookOptions) {
    this.origin = webhookOrigin(opts.url);
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
    })();
    return this.closing;
  }

  private async drain(): Promise<void> {
    for (let alert = this.queue.shift(); alert; alert = this.queue.shift()) {
      await this.deliver(alert);
    }
  }

  private async deliver(alert: AlertFact): Promise<void> {
    const { retries, backoffMs } = this.opts;
    const maxBackoffMs = this.opts.maxBackoffMs ?? 30_000;
    const attempts = 1 + Math.max(0, retries);
    const log = this.opts.log.child({ webhook: this.origin, alert_kind: alert.kind, channel: alert.channel });
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const status = await this.post(alert);
        log.info({ attempt, status }, "alert webhook delivered");
        this.opts.onOutcome?.("delivered", attempt);
        return;
      } catch (err) {
        const e = err instanceof WebhookError ? err : new WebhookError(errorMessage(err), null, true, { cause: err });
        const last = attempt === attempts || !e.retryable || this.abort.signal.aborted;
        if (last) {
          log.error({ attempt, status: e.status, error: e.message }, "alert webhook failed: giving up");
          this.opts.onOutcome?.("failed", attempt);
          return;
        }
        const delay = backoffDelay(attempt, { baseMs: backoffMs, maxMs: maxBackoffMs, jitter: 0 });
        log.warn({ attempt, status: e.status, error: e.message, retry_in_ms: delay }, "alert webhook failed: retrying");
        await abortableDelay(delay, this.abort.signal);
      }
    }
  }

  private async post(alert: AlertFact): Promise<number> {
    const { timeoutMs } = this.opts;
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(timeoutMs)]);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.opts.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "notify-dlq-monitor" },
        body: JSON.stringify(alert),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
        ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}),
      });
    } catch (err) {
      // The URL is never part of the message: undici errors do not carry it, and we add nothing.
      throw new WebhookError(signal.aborted && !this.abort.signal.aborted ? `timed out after ${timeoutMs}ms` : errorMessage(err), null, true, { cause: err });
    }
    await res.body.dump().catch(() => undefined);
    if (res.statusCode >= 200 && res.statusCode < 300) return res.statusCode;
    const retryable = res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500;
    throw new WebhookError(`HTTP ${res.statusCode}`, res.statusCode, retryable);
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return (err as { code?: string }).code ? `${(err as { code?: string }).code}: ${err.message}` : err.message;
  return String(err);
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
