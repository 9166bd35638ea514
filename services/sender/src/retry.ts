export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  /** Fraction of the delay added or removed at random, so retries of an outage spread out. */
  jitter: number;
}

/** `base · 2^(attempts-1)` ± jitter, capped. Pure: `random` is injectable for tests. */
export function retryDelay(attempts: number, p: RetryPolicy, random: () => number = Math.random): number {
  const exp = p.baseMs * 2 ** Math.max(0, attempts - 1);
  const spread = exp * p.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(p.maxMs, Math.round(exp + spread)));
}

/**
 * The longest a job can take from its first WeChat attempt to its last, as nats-server
 * schedules redeliveries on a consumer with `backoff` (measured on 2.9.10, see
 * docs/DECISIONS.md): after delivery n, a sender that died mid-call gets the job back after
 * `backoff[n-1]`; a `nak(delay)` waits `delay + backoff[n-1] - backoff[0]` (n >= 2), plus
 * the call itself (up to the WeChat timeout). Indexes past the end use the last entry.
 * Every retry must land inside WeChat's `client_msg_id` window, or a retry after a lost
 * answer can deliver twice.
 */
export function worstCaseRetrySpanMs(p: RetryPolicy, backoffMs: readonly number[], timeoutMs: number, maxDeliver: number): number {
  let span = 0;
  for (let n = 1; n < maxDeliver; n++) {
    const ackWait = backoffMs.length ? backoffMs[Math.min(n - 1, backoffMs.length - 1)]! : 0;
    const extra = n >= 2 && backoffMs.length ? ackWait - backoffMs[0]! : 0;
    const nak = Math.min(p.maxMs, p.baseMs * 2 ** (n - 1) * (1 + p.jitter)) + extra;
    span += Math.max(timeoutMs + nak, ackWait);
  }
  return Math.round(span);
}
