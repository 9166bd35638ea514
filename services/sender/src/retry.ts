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
