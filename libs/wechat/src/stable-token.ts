import type { Logger } from "@notify/log";
import { TokenUnavailableError } from "./errors.js";
import type { OnCall, WeChatHttp } from "./http.js";
import { MemoryRefreshBudget, RefreshBudgetSpentError, type RefreshBudget } from "./refresh-budget.js";

export interface FetchedToken {
  access_token: string;
  /** Seconds, as WeChat says. */
  expires_in: number;
}

/** Fetches access tokens from `POST /cgi-bin/stable_token`. */
export class StableTokenFetcher {
  constructor(
    private readonly http: WeChatHttp,
    private readonly appId: string,
    private readonly appSecret: string,
    private readonly log: Logger | undefined,
    private readonly onCall: OnCall | undefined,
    /** Forced refreshes draw on it (shared through KV by the client); plain fetches do not. */
    private readonly budget: RefreshBudget = new MemoryRefreshBudget(),
  ) {}

  /**
   * A token other than `rejected`. The normal mode returns the current token until it
   * expires, so it is tried first; only if WeChat hands back the token it just refused
   * does a forced refresh follow (WeChat limits those, and they invalidate the token
   * every other holder uses), and only within the forced-refresh budget: when it is spent
   * this throws RefreshBudgetSpentError and the send waits.
   */
  async fresh(rejected?: string): Promise<FetchedToken> {
    const t = await this.fetch(false);
    if (rejected === undefined || t.access_token !== rejected) return t;
    const d = await this.budget.take();
    if (!d.ok) {
      this.log?.warn({ appid: this.appId, reason: d.reason, retry_after_ms: d.retryAfterMs }, "stable_token returned the rejected access token; forced refresh budget spent, not forcing");
      throw new RefreshBudgetSpentError(d.reason, d.retryAfterMs, this.budget.limits);
    }
    this.log?.warn({ appid: this.appId }, "stable_token returned the rejected access token; forcing a refresh");
    return this.fetch(true);
  }

  async fetch(force: boolean): Promise<FetchedToken> {
    const body = JSON.stringify({ grant_type: "client_credential", appid: this.appId, secret: this.appSecret, force_refresh: force });
    const r = await this.http.call("POST", "/cgi-bin/stable_token", body);
    if (!r.ok) {
      this.onCall?.(r.code, r.durationMs, "token");
      throw new TokenUnavailableError(`stable_token failed: ${this.scrub(r.error)}`);
    }
    const { access_token, expires_in, errcode, errmsg } = r.body;
    if (typeof access_token === "string" && access_token && typeof expires_in === "number") {
      this.onCall?.(0, r.durationMs, "token");
      return { access_token, expires_in };
    }
    const code = typeof errcode === "number" ? errcode : null;
    this.onCall?.(code ?? "bad_response", r.durationMs, "token");
    throw new TokenUnavailableError(`stable_token refused: errcode ${code ?? "none"} ${this.scrub(String(errmsg ?? ""))}`.trim(), code);
  }

  private scrub(s: string): string {
    return this.appSecret ? s.split(this.appSecret).join("[redacted]") : s;
  }
}
