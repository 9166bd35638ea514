import type { KV, KvEntry } from "@nats-io/kv";
import { encodeJson, encodeKeyToken } from "@notify/contracts";
import type { Logger } from "@notify/log";
import { isWrongLastSequence } from "@notify/nats";
import type { TokenBackend } from "./access-tokens.js";
import { TokenUnavailableError } from "./errors.js";
import type { StableTokenFetcher } from "./stable-token.js";
import { isExpired, recordFrom, satisfies, type StoredTokenValue, type TokenRecord, type TokenRequest } from "./token-record.js";

export interface KvTokenBackendOptions {
  kv: KV;
  appId: string;
  fetcher: StableTokenFetcher;
  replicaId: string;
  /** How long a refresher may hold the lease before others take over (covers two WeChat calls). */
  leaseMs: number;
  refreshMarginMs: number;
  log?: Logger | undefined;
  now?: () => number;
}

/** Rounds of read → claim/wait before giving up (each round is a conflict or a lease change). */
const MAX_ROUNDS = 8;

/**
 * The access token shared by every replica through the `wechat_tokens` bucket.
 *
 * A replica that needs a new token first claims a lease on the key with a
 * compare-and-set on its revision; only the winner calls `stable_token`, then writes the
 * token with another compare-and-set on the lease's revision. The others watch the key
 * until the token changes (or the lease runs out because its holder died). So N replicas
 * whose token expired together make one call to WeChat, not N: the stampede that breaks
 * single-process WeChat SDKs run as several processes.
 */
export class KvTokenBackend implements TokenBackend {
  readonly key: string;
  private readonly now: () => number;
  private readonly watchers = new Set<{ stop(): void }>();
  private closed = false;

  constructor(private readonly o: KvTokenBackendOptions) {
    this.key = encodeKeyToken(o.appId);
    this.now = o.now ?? Date.now;
  }

  async acquire(req: TokenRequest): Promise<TokenRecord> {
    const { kv, refreshMarginMs } = this.o;
    for (let round = 0; round < MAX_ROUNDS && !this.closed; round++) {
      const entry = await kv.get(this.key);
      const value = readValue(entry);
      const token = asRecord(value);
      const now = this.now();
      if (token && satisfies(token, req, now, refreshMarginMs)) return token;

      const lease = value?.refreshing;
      if (lease && lease.until > now && lease.by !== this.o.replicaId) {
        // Someone is refreshing. A proactive caller keeps its live token; the rest wait.
        if (req.proactive && token && !isExpired(token, now) && token.access_token !== req.rejected) return token;
        await this.waitForChange(entry!.revision, lease.until);
        continue;
      }

      const claim: StoredTokenValue = { ...value, refreshing: { by: this.o.replicaId, until: now + this.o.leaseMs } };
      let leaseRevision: number;
      try {
        leaseRevision = entry ? await kv.update(this.key, encodeJson(claim), entry.revision) : await kv.create(this.key, encodeJson(claim));
      } catch (err) {
        if (isWrongLastSequence(err)) continue; // another replica claimed or wrote first: read theirs
        throw err;
      }
      return this.refreshHolding(leaseRevision, value, req);
    }
    throw new TokenUnavailableError(this.closed ? "token store closed" : "no access token after repeated conflicts on the token key");
  }

  /** We hold the lease: fetch, then publish the token (or give the lease back on failure). */
  private async refreshHolding(leaseRevision: number, previous: StoredTokenValue | null, req: TokenRequest): Promise<TokenRecord> {
    const { kv, fetcher, replicaId, log, appId } = this.o;
    let token: TokenRecord;
    try {
      token = recordFrom(await fetcher.fresh(req.rejected), replicaId, this.now());
    } catch (err) {
      // Let a waiter try at once rather than sit out the lease.
      const { refreshing: _, ...released } = previous ?? {};
      await kv.update(this.key, encodeJson(released), leaseRevision).catch(() => undefined);
      throw err;
    }
    try {
      await kv.update(this.key, encodeJson(token), leaseRevision);
    } catch (err) {
      // Our lease ran out and someone took over; the token we hold is still valid for us.
      if (!isWrongLastSequence(err)) log?.warn({ err, appid: appId }, "could not store the access token in KV; using it locally");
    }
    log?.info({ appid: appId, expires_at: new Date(token.expires_at).toISOString(), refreshed_by: replicaId, after_rejection: req.rejected !== undefined }, "access token refreshed");
    return token;
  }

  /** Resolves when the key moves past `revision` or the lease ends, whichever is first. */
  private async waitForChange(revision: number, untilMs: number): Promise<void> {
    const iter = await this.o.kv.watch({ key: this.key });
    this.watchers.add(iter);
    // close() may have run while the watch was being set up.
    if (this.closed) iter.stop();
    const timer = setTimeout(() => iter.stop(), Math.max(0, untilMs - this.now()) + 10);
    try {
      for await (const e of iter) if (e.revision > revision) break;
    } finally {
      clearTimeout(timer);
      iter.stop();
      this.watchers.delete(iter);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers) w.stop();
  }
}

function readValue(e: KvEntry | null): StoredTokenValue | null {
  if (!e || e.operation !== "PUT") return null;
  try {
    const v = e.json<unknown>();
    return v && typeof v === "object" ? (v as StoredTokenValue) : null;
  } catch {
    return null; // not ours or corrupt: overwritten by the next refresh
  }
}

function asRecord(v: StoredTokenValue | null): TokenRecord | null {
  if (!v || typeof v.access_token !== "string" || typeof v.expires_at !== "number") return null;
  return { access_token: v.access_token, expires_at: v.expires_at, refreshed_by: String(v.refreshed_by ?? ""), refreshed_at: Number(v.refreshed_at ?? 0) };
}
