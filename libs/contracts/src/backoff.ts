/**
 * The one back-off of the system. Attempt n (1-based) waits `baseMs · 2^(n-1)`, spread by
 * ± `jitter` (a fraction, so the retries of one outage do not return together) and capped
 * at `maxMs`. The sender's retry schedule (RETRY_BASE_MS, RETRY_MAX_MS, RETRY_JITTER) and
 * the alert webhook's retries both use it.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** 0..1: the delay moves up or down by at most this fraction. */
  jitter: number;
}

/**
 * The wait after failed attempt `attempt`. Pure: `random` (0..1) is injectable for tests;
 * `() => 1` gives the longest wait the policy allows. The exponent is capped before the
 * jitter, so a huge attempt number cannot overflow into NaN, and waits at the cap still
 * spread (downwards).
 */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const exp = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(n - 1, 52));
  const spread = exp * p.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(p.maxMs, Math.round(exp + spread)));
}
