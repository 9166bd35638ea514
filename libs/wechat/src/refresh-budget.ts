import type { KV } from "@nats-io/kv";
import { encodeJson, encodeKeyToken } from "@notify/contracts";
import { isWrongLastSequence } from "@notify/nats";
import { TokenUnavailableError } from "./errors.js";

/**
 * WeChat allows 20 forced `stable_token` refreshes a day, 30 s apart, and each one
 * invalidates the token every replica is using. A persistent 40001 must not turn into a
 * refresh storm, so forced refreshes draw on a budget: at most one per `minIntervalMs`
 * and `dailyCap` per day (WeChat's day, Beijing time), shared by every replica of the app.
 */
export interface RefreshBudgetLimits {
  /** Default 30 s (WeChat's own spacing). */
  minIntervalMs: number;
  /** Default 15: below WeChat's 20, leaving room for an operator's manual refresh. */
  dailyCap: number;
}

export const DEFAULT_REFRESH_BUDGET: RefreshBudgetLimits = { minIntervalMs: 30_000, dailyCap: 15 };

export type BudgetDecision = { ok: true } | { ok: false; reason: "interval" | "daily_cap"; retryAfterMs: number };

/** What the budget remembers (one KV value per app). */
export interface BudgetState {
  /** WeChat's day (UTC+8) of the count, YYYY-MM-DD. */
  day: string;
  count: number;
  /** Epoch ms of the last forced refresh. */
  last_at: number;
}

const BEIJING_OFFSET_MS = 8 * 3600_000;
const DAY_MS = 24 * 3600_000;

export function wechatDay(now: number): string {
  return new Date(now + BEIJING_OFFSET_MS).toISOString().slice(0, 10);
}

/** Ms from `now` to the start of WeChat's next day (midnight Beijing time), when daily quotas reset. */
export function msUntilWeChatDay(now: number): number {
  return Math.floor((now + BEIJING_OFFSET_MS) / DAY_MS + 1) * DAY_MS - BEIJING_OFFSET_MS - now;
}

/** Pure: may a forced refresh happen now, and the state after it. */
export function decide(state: BudgetState | null, now: number, limits: RefreshBudgetLimits): { decision: BudgetDecision; next?: BudgetState } {
  const day = wechatDay(now);
  const sinceLast = state ? now - state.last_at : Infinity;
  if (sinceLast < limits.minIntervalMs) return { decision: { ok: false, reason: "interval", retryAfterMs: limits.minIntervalMs - sinceLast } };
  const count = state && state.day === day ? state.count : 0;
  if (count >= limits.dailyCap) {
    return { decision: { ok: false, reason: "daily_cap", retryAfterMs: msUntilWeChatDay(now) } };
  }
  return { decision: { ok: true }, next: { day, count: count + 1, last_at: now } };
}

/** A forced refresh was needed and the budget said no: the send waits (retryable). */
export class RefreshBudgetSpentError extends TokenUnavailableError {
  override name = "RefreshBudgetSpentError";
  constructor(
    readonly reason: "interval" | "daily_cap",
    readonly retryAfterMs: number,
    limits: RefreshBudgetLimits,
  ) {
    super(
      reason === "interval"
        ? `forced access token refresh refused: one per ${limits.minIntervalMs / 1000} s across all replicas, next in ${Math.ceil(retryAfterMs / 1000)} s`
        : `forced access token refresh refused: the daily cap of ${limits.dailyCap} is spent (WeChat allows 20), next at the start of WeChat's day`,
    );
  }
}

export interface RefreshBudget {
  readonly limits: RefreshBudgetLimits;
  /** Takes one forced refresh from the budget, or says when to try again. */
  take(): Promise<BudgetDecision>;
}

/** One process, no sharing: for a single replica without KV and unit tests. */
export class MemoryRefreshBudget implements RefreshBudget {
  private state: BudgetState | null = null;
  constructor(
    readonly limits: RefreshBudgetLimits = DEFAULT_REFRESH_BUDGET,
    private readonly now: () => number = Date.now,
  ) {}

  async take(): Promise<BudgetDecision> {
    const { decision, next } = decide(this.state, this.now(), this.limits);
    if (next) this.state = next;
    return decision;
  }
}

const MAX_ROUNDS = 8;

/**
 * The budget in the `wechat_tokens` bucket, next to the token (key `<app>.force_refresh`).
 * Taking is a compare-and-set on the key's revision (create when absent), so two replicas
 * that both see room cannot both spend the same slot: the loser re-reads and is refused.
 */
export class KvRefreshBudget implements RefreshBudget {
  readonly key: string;
  constructor(
    private readonly kv: KV,
    appId: string,
    readonly limits: RefreshBudgetLimits = DEFAULT_REFRESH_BUDGET,
    private readonly now: () => number = Date.now,
  ) {
    this.key = `${encodeKeyToken(appId)}.force_refresh`;
  }

  async take(): Promise<BudgetDecision> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entry = await this.kv.get(this.key);
      const state = entry && entry.operation === "PUT" ? readState(() => entry.json<unknown>()) : null;
      const { decision, next } = decide(state, this.now(), this.limits);
      if (!next) return decision;
      try {
        if (entry) await this.kv.update(this.key, encodeJson(next), entry.revision);
        else await this.kv.create(this.key, encodeJson(next));
        return decision;
      } catch (err) {
        if (isWrongLastSequence(err)) continue; // another replica took a slot first: decide again
        throw err;
      }
    }
    throw new TokenUnavailableError("forced refresh budget: too many conflicting writers");
  }
}

function readState(json: () => unknown): BudgetState | null {
  try {
    const v = json() as Partial<BudgetState> | null;
    if (!v || typeof v.day !== "string" || typeof v.count !== "number" || typeof v.last_at !== "number") return null;
    return { day: v.day, count: v.count, last_at: v.last_at };
  } catch {
    return null; // corrupt: the next take rewrites it
  }
}
