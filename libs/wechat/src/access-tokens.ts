import type { Logger } from "@notify/log";
import { TokenUnavailableError } from "./errors.js";
import type { StableTokenFetcher } from "./stable-token.js";
import { isExpired, isStale, recordFrom, satisfies, type TokenRecord, type TokenRequest } from "./token-record.js";

/** Where a process gets a token from when its own copy will not do. */
export interface TokenBackend {
  acquire(req: TokenRequest): Promise<TokenRecord>;
  close(): Promise<void>;
}

export interface AccessTokensOptions {
  /** Refresh this long before expiry, in the background (default 5 minutes). */
  refreshMarginMs?: number;
  log?: Logger | undefined;
  now?: () => number;
}

/**
 * The process's copy of the access token. Sends read it from memory; the backend is
 * asked only when there is none, it is near expiry (in the background, sends go on)
 * or WeChat rejected it. One backend request at a time per process.
 */
export class AccessTokens {
  private current: TokenRecord | null = null;
  private loading: Promise<TokenRecord> | null = null;
  private readonly marginMs: number;
  private readonly now: () => number;

  constructor(
    private readonly backend: TokenBackend,
    private readonly o: AccessTokensOptions = {},
  ) {
    this.marginMs = o.refreshMarginMs ?? 5 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /** A token to send with. */
  async get(): Promise<string> {
    const t = this.current;
    const now = this.now();
    if (t && !isExpired(t, now)) {
      if (isStale(t, now, this.marginMs) && !this.loading) {
        this.load({ proactive: true }).catch((err: unknown) => this.o.log?.warn({ err }, "background access token refresh failed"));
      }
      return t.access_token;
    }
    return (await this.load({})).access_token;
  }

  /** WeChat refused `rejected` (40001/40014/42001): a different live token, refreshed only if needed. */
  async replace(rejected: string): Promise<string> {
    // A load already under way may be one that started before the rejection: check its result.
    for (let i = 0; i < 3; i++) {
      const cur = this.current;
      if (cur && satisfies(cur, { rejected }, this.now(), this.marginMs)) return cur.access_token;
      const t = await this.load({ rejected });
      if (t.access_token !== rejected) return t.access_token;
    }
    throw new TokenUnavailableError("WeChat keeps issuing the access token it rejects");
  }

  private load(req: TokenRequest): Promise<TokenRecord> {
    this.loading ??= this.backend
      .acquire(req)
      .then((t) => {
        this.current = t;
        return t;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

/** One process, no sharing: for a single replica or unit tests. */
export class LocalTokenBackend implements TokenBackend {
  constructor(
    private readonly fetcher: StableTokenFetcher,
    private readonly replicaId: string,
    private readonly now: () => number = Date.now,
  ) {}

  async acquire(req: TokenRequest): Promise<TokenRecord> {
    return recordFrom(await this.fetcher.fresh(req.rejected), this.replicaId, this.now());
  }

  async close(): Promise<void> {}
}
