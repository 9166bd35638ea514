/**
 * The access token as held in memory and in the `wechat_tokens` bucket (one key per
 * app). `refreshing` is the lease of the one replica calling WeChat right now.
 */
export interface TokenRecord {
  access_token: string;
  /** Epoch ms. */
  expires_at: number;
  /** The replica that fetched it. */
  refreshed_by: string;
  /** Epoch ms. */
  refreshed_at: number;
}

export interface StoredTokenValue extends Partial<TokenRecord> {
  refreshing?: { by: string; until: number };
}

/** What a caller needs from the store. */
export interface TokenRequest {
  /** WeChat refused this token: any other live token will do. */
  rejected?: string;
  /** Near expiry: refresh if nobody else is, else keep using the current one. */
  proactive?: boolean;
}

export function isExpired(t: TokenRecord, now: number): boolean {
  return now >= t.expires_at;
}

/**
 * Inside the last `marginMs` of its life and not fetched inside that window. The second
 * condition matters: `stable_token` keeps returning the same token until it expires,
 * so a token fetched near its end must not trigger another refresh on every call.
 */
export function isStale(t: TokenRecord, now: number, marginMs: number): boolean {
  const windowStart = t.expires_at - marginMs;
  return now >= windowStart && t.refreshed_at < windowStart;
}

export function satisfies(t: TokenRecord | null, req: TokenRequest, now: number, marginMs: number): boolean {
  if (!t || !t.access_token || isExpired(t, now)) return false;
  if (req.rejected !== undefined && t.access_token === req.rejected) return false;
  if (req.proactive && isStale(t, now, marginMs)) return false;
  return true;
}

/** A token WeChat gave us, dated. A near-zero lifetime is floored so one clock skew cannot spin refreshes. */
export function recordFrom(t: { access_token: string; expires_in: number }, by: string, now: number): TokenRecord {
  return { access_token: t.access_token, expires_at: now + Math.max(1, t.expires_in) * 1000, refreshed_by: by, refreshed_at: now };
}
