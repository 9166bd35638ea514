import { hash, timingSafeEqual } from "node:crypto";

/** Checks bearer keys without leaking, through timing, which characters matched. */
export interface KeyVerifier {
  /** A short, non-reversible id of the key presented, or null when it is not a configured key. */
  verify(authorization: string | undefined): string | null;
  readonly enabled: boolean;
}

// One-shot hashing: createHash().update().digest() builds a Hash object per call, ~4× the cost.
const digest = (s: string): Buffer => hash("sha256", s, "buffer");

/**
 * Both sides are hashed first so the compared buffers always have the same length, and
 * every configured key is compared (no early exit) so the time does not say which one matched.
 * Keys come from GATEWAY_API_KEYS at start: rotating one is a restart, so there is no verdict
 * to cache across requests (each request is checked once: plugins/auth.ts keyIdOf).
 */
export function createKeyVerifier(keys: readonly string[], enabled = true): KeyVerifier {
  const digests = keys.map((k) => ({ d: digest(k), id: digest(k).toString("hex").slice(0, 12) }));
  return {
    enabled,
    verify(authorization) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "");
      if (!m) return null;
      const presented = digest(m[1]!);
      let found: string | null = null;
      for (const k of digests) {
        if (timingSafeEqual(k.d, presented)) found = k.id;
      }
      return found;
    },
  };
}
