import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { FaultBook } from "./faults.js";
import { MessageLog } from "./messages.js";
import { DailyQuota, ForceRefreshLimiter, IpWhitelist } from "./limits.js";
import { ReceiptPusher } from "./receipts.js";
import { TokenIssuer } from "./tokens.js";

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** The one app the simulator knows (defaults match @notify/config's WeChat defaults). */
  appId?: string;
  appSecret?: string;
  /** Lifetime of issued access tokens, seconds (default 7200, as WeChat). */
  tokenTtlSec?: number;
  /** `touser + client_msg_id` de-duplication window (default 10 minutes, as WeChat). */
  dedupWindowMs?: number;
  /** Latency added to every WeChat API answer, ms (default 0). */
  latencyMs?: number;
  /** Accepted messages kept in memory; the oldest tenth is dropped at the cap (default 1,000,000). */
  maxMessages?: number;
  /** `stable_token` force refreshes a day (default 20, as WeChat); past it 45009. */
  forceRefreshDailyLimit?: number;
  /** Least spacing of force refreshes, ms (default 30 s, as WeChat); sooner answers 45011. */
  forceRefreshMinIntervalMs?: number;
  /** Daily quota of template/send (default 100,000, as WeChat); past it 45009 until midnight Beijing time. */
  templateDailyQuota?: number;
  /** Caller IPs the token endpoints accept (default null: no whitelist); others answer 40164. */
  ipWhitelist?: readonly string[] | null;
  /** Epoch ms now; tests inject a clock to cross WeChat's day or a refresh interval. */
  clock?: (() => number) | null;
}

export type ResolvedOptions = Required<SimulatorOptions>;

export const DEFAULT_APP_ID = "wx-local-simulator";
export const DEFAULT_APP_SECRET = "local-simulator-secret";

export function resolveOptions(o: SimulatorOptions): ResolvedOptions {
  return {
    port: o.port ?? 0,
    host: o.host ?? "127.0.0.1",
    appId: o.appId ?? DEFAULT_APP_ID,
    appSecret: o.appSecret ?? DEFAULT_APP_SECRET,
    tokenTtlSec: o.tokenTtlSec ?? 7200,
    dedupWindowMs: o.dedupWindowMs ?? 10 * 60_000,
    latencyMs: o.latencyMs ?? 0,
    maxMessages: o.maxMessages ?? 1_000_000,
    forceRefreshDailyLimit: o.forceRefreshDailyLimit ?? 20,
    forceRefreshMinIntervalMs: o.forceRefreshMinIntervalMs ?? 30_000,
    templateDailyQuota: o.templateDailyQuota ?? 100_000,
    ipWhitelist: o.ipWhitelist ?? null,
    clock: o.clock ?? null,
  };
}

/** Counters since start or the last reset. */
export interface SimStats {
  /** Messages accepted and recorded (deliveries). */
  accepted: number;
  /** Sends answered with the msgid of an earlier message (same touser + client_msg_id): not delivered again. */
  duplicates: number;
  /** Sends that delivered nothing: an errcode, an HTTP error, a dropped or unanswered call. */
  failed: number;
  /** Calls to cgi-bin/message/template/send. */
  sendCalls: number;
  /** Sends refused with 47003 for a keyword value that breaks WeChat's rule for its type. */
  fieldRuleRejections: number;
  /** Sends refused for their access token (41001, 40001, 42001). */
  tokenRejections: number;
  /** Calls to cgi-bin/token. */
  tokenCalls: number;
  /** Calls to cgi-bin/stable_token. */
  stableTokenCalls: number;
  /** stable_token force refreshes granted. */
  forceRefreshes: number;
  /** stable_token force refreshes refused by the daily limit (45009) or the 30 s spacing (45011). */
  forceRefreshesRefused: number;
  /** Token calls refused by the IP whitelist (40164). */
  ipRejections: number;
  /** Sends refused because the day's template quota is spent (45009). */
  quotaRejections: number;
  /** Calls to cgi-bin/openapi/quota/get. */
  quotaCalls: number;
  /** New access tokens minted by either token endpoint. */
  tokensIssued: number;
  /** Connections destroyed by a drop fault. */
  dropped: number;
  /** Calls left unanswered by a timeout fault. */
  timedOut: number;
  /** Faults currently set. */
  activeFaults: number;
  /** Messages held in memory. */
  messagesHeld: number;
}

type Counters = Omit<SimStats, "activeFaults" | "messagesHeld">;

function zero(): Counters {
  return { accepted: 0, duplicates: 0, failed: 0, fieldRuleRejections: 0, sendCalls: 0, tokenRejections: 0, tokenCalls: 0, stableTokenCalls: 0, forceRefreshes: 0, forceRefreshesRefused: 0, ipRejections: 0, quotaRejections: 0, quotaCalls: 0, tokensIssued: 0, dropped: 0, timedOut: 0 };
}

/** Everything the simulator knows; the HTTP routes and the in-process API both act on it. */
export class SimState {
  readonly faults = new FaultBook();
  readonly log: MessageLog;
  readonly tokens: TokenIssuer;
  readonly receipts: ReceiptPusher;
  readonly forceRefresh: ForceRefreshLimiter;
  readonly quota: DailyQuota;
  readonly whitelist = new IpWhitelist();
  counters: Counters = zero();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly hanging = new Set<ServerResponse>();
  private closed = false;

  constructor(readonly cfg: ResolvedOptions) {
    this.log = new MessageLog(cfg.dedupWindowMs, cfg.maxMessages);
    this.tokens = new TokenIssuer(cfg.tokenTtlSec * 1000);
    this.receipts = new ReceiptPusher(cfg.appId, (ms, fn) => this.after(ms, fn));
    this.forceRefresh = new ForceRefreshLimiter(cfg.forceRefreshDailyLimit, cfg.forceRefreshMinIntervalMs);
    this.quota = new DailyQuota(cfg.templateDailyQuota);
    this.whitelist.set(cfg.ipWhitelist);
  }

  /** Epoch ms with sub-millisecond precision, never decreasing. */
  now(): number {
    if (this.cfg.clock) return this.cfg.clock();
    return performance.timeOrigin + performance.now();
  }

  stats(): SimStats {
    return { ...this.counters, activeFaults: this.faults.size, messagesHeld: this.log.size };
  }

  /** Clears messages, de-duplication, counters, faults and the day's quota use. Issued tokens stay valid so running clients go on. */
  reset(): void {
    this.log.reset();
    this.forceRefresh.reset();
    this.quota.reset();
    this.faults.clear();
    this.counters = zero();
  }

  /** Runs `fn` after `ms`, or now; pending runs are cancelled by close(). */
  after(ms: number, fn: () => void): void {
    if (ms <= 0 || this.closed) {
      if (!this.closed) fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** Leaves a response unanswered until the client gives up or the simulator closes. */
  hang(res: ServerResponse): void {
    this.hanging.add(res);
    res.once("close", () => this.hanging.delete(res));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
  }
}
