import { randomBytes } from "node:crypto";
import { Errcode } from "./errcodes.js";

interface Issued {
  expiresAt: number;
  /** Replaced by a force refresh: "invalid or not latest" (40001), not "expired" (42001). */
  revoked: boolean;
}

export interface IssuedToken {
  access_token: string;
  expires_in: number;
}

/** After `cgi-bin/token` issues a new token the previous one keeps working this long (WeChat's rule). */
const PLAIN_OVERLAP_MS = 5 * 60_000;
/** Expired tokens are remembered this long so they answer 42001 rather than 40001. */
const FORGET_AFTER_MS = 60 * 60_000;

/**
 * Access tokens of one app. `cgi-bin/token` and `cgi-bin/stable_token` are isolated
 * from each other, as in WeChat: `stable_token` returns the same token until it
 * expires unless `force_refresh`, which invalidates the previous one at once.
 */
export class TokenIssuer {
  private readonly tokens = new Map<string, Issued>();
  private stable: string | null = null;
  private plain: string | null = null;

  constructor(private readonly ttlMs: number) {}

  issuePlain(now: number): IssuedToken {
    const prev = this.plain ? this.tokens.get(this.plain) : undefined;
    if (prev) prev.expiresAt = Math.min(prev.expiresAt, now + PLAIN_OVERLAP_MS);
    this.plain = this.mint(now);
    return { access_token: this.plain, expires_in: Math.floor(this.ttlMs / 1000) };
  }

  /** Returns the token and whether a new one was minted. */
  issueStable(now: number, force: boolean): IssuedToken & { minted: boolean } {
    const cur = this.stable ? this.tokens.get(this.stable) : undefined;
    if (this.stable && cur && !cur.revoked && cur.expiresAt > now && !force) {
      return { access_token: this.stable, expires_in: Math.max(0, Math.floor((cur.expiresAt - now) / 1000)), minted: false };
    }
    if (cur && force) cur.revoked = true;
    this.stable = this.mint(now);
    return { access_token: this.stable, expires_in: Math.floor(this.ttlMs / 1000), minted: true };
  }

  /** 0 when the token may be used, else the errcode WeChat answers. */
  check(token: string | null | undefined, now: number): number {
    if (!token) return Errcode.accessTokenMissing;
    const t = this.tokens.get(token);
    if (!t || t.revoked) return Errcode.invalidCredential;
    if (t.expiresAt <= now) return Errcode.accessTokenExpired;
    return Errcode.ok;
  }

  /** Every issued token expires now (the next use answers 42001). Returns how many were live. */
  expireAll(now: number): number {
    let n = 0;
    for (const t of this.tokens.values()) {
      if (!t.revoked && t.expiresAt > now) n++;
      t.expiresAt = Math.min(t.expiresAt, now);
    }
    return n;
  }

  private mint(now: number): string {
    for (const [k, t] of this.tokens) if (t.expiresAt + FORGET_AFTER_MS < now) this.tokens.delete(k);
    // Real tokens are ~136 characters of [\w-]; clients must store at least 512.
    const token = `SIM_${randomBytes(96).toString("base64url")}`;
    this.tokens.set(token, { expiresAt: now + this.ttlMs, revoked: false });
    return token;
  }
}
