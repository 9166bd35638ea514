import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { Dispatcher } from "undici";
import type { WeChatTemplatePayload } from "@notify/contracts";
import { redactUrl, type Logger } from "@notify/log";
import { AccessTokens, LocalTokenBackend, type TokenBackend } from "./access-tokens.js";
import { ErrcodeClass, classifyErrcode } from "./errcodes.js";
import { TokenUnavailableError } from "./errors.js";
import { WeChatHttp, type CallCode, type OnCall } from "./http.js";
import { KvTokenBackend } from "./kv-token-backend.js";
import { DEFAULT_REFRESH_BUDGET, KvRefreshBudget, MemoryRefreshBudget, RefreshBudgetSpentError, msUntilWeChatDay, type RefreshBudgetLimits } from "./refresh-budget.js";
import { StableTokenFetcher } from "./stable-token.js";

/** The real API; point it at the simulator locally. */
export const WECHAT_API_BASE = "https://api.weixin.qq.com";

export type SendFailureKind = "retryable" | "permanent" | "quota";

/**
 * What one `sendTemplate` ended in. `code` is a short label for logs, records and
 * metrics: the errcode as a string, or `timeout`, `network`, `http_5xx`, `http_4xx`,
 * `bad_response`, `token_unavailable`, `token_refresh_budget`, `closed`.
 */
export type SendResult =
  | { kind: "success"; msgid: string; errcode: 0; code: "0"; durationMs: number }
  | {
      kind: SendFailureKind;
      errcode: number | null;
      httpStatus?: number;
      code: string;
      error: string;
      durationMs: number;
      /** Do not try again before this long (the forced-refresh budget, or the daily quota's reset at midnight Beijing time). */
      retryAfterMs?: number;
      /** The daily quota's reset as an instant (epoch ms, the client's clock): what `retryAfterMs` counts to. */
      retryAt?: number;
      /**
       * The send may have been delivered: the request left and no errcode came back (a
       * timeout, a dropped connection, an HTTP error, an unreadable body). A retry is
       * only safe while WeChat still de-duplicates the client_msg_id (10 minutes).
       */
      uncertain?: true;
    };

/** `cgi-bin/openapi/quota/get` for one API: today's limit and use (WeChat's day, Beijing time). */
export interface QuotaView {
  daily_limit: number;
  used: number;
  remain: number;
}

/**
 * The code of a send that needed a forced token refresh the budget refused: `retryable`
 * while the 30 s spacing runs, `quota` once the daily cap is spent. Worth an alert.
 */
export const TOKEN_REFRESH_BUDGET_CODE = "token_refresh_budget";

export interface WeChatClientOptions {
  appId: string;
  appSecret: string;
  /** Default the real API. */
  apiBase?: string;
  /** Bound on every HTTP call, end to end (default 5000). */
  timeoutMs?: number;
  /**
   * The `wechat_tokens` bucket: every replica shares one access token through it. Without
   * it the token is this process's own (fine for one replica and unit tests).
   */
  tokenBucket?: KV;
  log?: Logger;
  /** Called once per HTTP call to WeChat (sends and token fetches), for metrics. */
  onCall?: OnCall;
  /** Sockets to the WeChat API (default 64). */
  connections?: number;
  /** A caller-owned undici dispatcher (MockAgent in tests). */
  dispatcher?: Dispatcher;
  /** Names this replica in the token record (default host-pid-random). */
  replicaId?: string;
  /** Refresh the token this long before it expires, in the background (default 5 minutes). */
  refreshMarginMs?: number;
  /** Forced refreshes: one per `minIntervalMs` (30 s), `dailyCap` (15) a day, across all replicas. */
  forceRefresh?: Partial<RefreshBudgetLimits>;
  now?: () => number;
}

/** WeChat settings as @notify/config's WeChatEnv reads them. */
export interface WeChatSettings {
  WECHAT_API_BASE: string;
  WECHAT_APP_ID: string;
  WECHAT_APP_SECRET: string;
  WECHAT_TIMEOUT_MS: number;
}

export function createWeChatClient(cfg: WeChatSettings, deps: Omit<WeChatClientOptions, "appId" | "appSecret" | "apiBase" | "timeoutMs"> = {}): WeChatClient {
  return new WeChatClient({ ...deps, appId: cfg.WECHAT_APP_ID, appSecret: cfg.WECHAT_APP_SECRET, apiBase: cfg.WECHAT_API_BASE, timeoutMs: cfg.WECHAT_TIMEOUT_MS });
}

const SEND_PATH = "/cgi-bin/message/template/send";
/** WeChat msgids are 64-bit: read them from the text, JSON numbers lose digits past 2^53. */
const MSGID = /"msgid"\s*:\s*"?(\d+)/;

type Attempt =
  | { cls: "success"; msgid: string }
  | { cls: "token" | SendFailureKind; errcode: number | null; httpStatus?: number; code: string; error: string; uncertain?: true };

/**
 * WeChat Official Account client: template messages with a shared access token.
 * `sendTemplate` never throws for WeChat or network failures; it returns a classified
 * result. The app secret and access tokens never reach logs or error strings.
 */
export class WeChatClient {
  readonly appId: string;
  private readonly http: WeChatHttp;
  private readonly tokens: AccessTokens;
  private readonly log: Logger | undefined;
  private readonly onCall: OnCall | undefined;
  private readonly now: () => number;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: WeChatClientOptions) {
    this.appId = o.appId;
    this.log = o.log?.child({ component: "wechat-client" });
    this.onCall = o.onCall;
    const timeoutMs = o.timeoutMs ?? 5000;
    this.http = new WeChatHttp({ apiBase: o.apiBase ?? WECHAT_API_BASE, timeoutMs, ...(o.connections ? { connections: o.connections } : {}), ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}) });
    const replicaId = o.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    const limits = { ...DEFAULT_REFRESH_BUDGET, ...o.forceRefresh };
    const now = o.now ?? Date.now;
    this.now = now;
    const budget = o.tokenBucket ? new KvRefreshBudget(o.tokenBucket, o.appId, limits, now) : new MemoryRefreshBudget(limits, now);
    const fetcher = new StableTokenFetcher(this.http, o.appId, o.appSecret, this.log, o.onCall, budget);
    const refreshMarginMs = o.refreshMarginMs ?? 5 * 60_000;
    const backend: TokenBackend = o.tokenBucket
      ? new KvTokenBackend({ kv: o.tokenBucket, appId: o.appId, fetcher, replicaId, leaseMs: 2 * timeoutMs + 1000, refreshMarginMs, log: this.log, ...(o.now ? { now: o.now } : {}) })
      : new LocalTokenBackend(fetcher, replicaId, o.now);
    this.tokens = new AccessTokens(backend, { refreshMarginMs, log: this.log, ...(o.now ? { now: o.now } : {}) });
  }

  /**
   * Sends one template message. `payload.client_msg_id` should be the send_id: WeChat
   * de-duplicates it per openid for 10 minutes, so a retry after a lost answer is not a
   * second message. A token errcode refreshes the shared token and retries once.
   */
  async sendTemplate(payload: WeChatTemplatePayload): Promise<SendResult> {
    const t0 = performance.now();
    if (this.closing) return { kind: "retryable", errcode: null, code: "closed", error: "WeChat client is closed", durationMs: 0 };
    const body = JSON.stringify(payload);
    let a: Attempt;
    let token: string;
    try {
      ({ result: a, token } = await this.withToken(
        (t) => this.post(t, body),
        (r) => (r.cls === ErrcodeClass.token ? r.errcode : null),
        { client_msg_id: payload.client_msg_id },
      ));
    } catch (err) {
      return this.tokenFailure(err, t0);
    }
    const durationMs = performance.now() - t0;
    if (a.cls === ErrcodeClass.success) {
      this.log?.debug({ client_msg_id: payload.client_msg_id, msgid: a.msgid, durationMs }, "template message sent");
      return { kind: "success", msgid: a.msgid, errcode: 0, code: "0", durationMs };
    }
    // Still a token error after a fresh token: WeChat-side trouble, worth another try later.
    const kind: SendFailureKind = a.cls === ErrcodeClass.token ? "retryable" : a.cls;
    const error = this.scrub(a.error, token);
    this.log?.debug({ client_msg_id: payload.client_msg_id, kind, code: a.code, durationMs }, "template message not sent");
    // The daily quota (45009) comes back at midnight Beijing time, not before: say so.
    const at = this.now();
    const retryAfterMs = kind === "quota" ? msUntilWeChatDay(at) : undefined;
    return {
      kind,
      errcode: a.errcode,
      ...(a.httpStatus !== undefined ? { httpStatus: a.httpStatus } : {}),
      code: a.code,
      error,
      durationMs,
      ...(retryAfterMs !== undefined ? { retryAfterMs, retryAt: at + retryAfterMs } : {}),
      ...(a.uncertain ? { uncertain: true as const } : {}),
    };
  }

  /**
   * Today's quota of one API (default template/send) from `cgi-bin/openapi/quota/get`.
   * Throws when WeChat or the token does not answer with one.
   */
  async quota(cgiPath: string = SEND_PATH): Promise<QuotaView> {
    const body = JSON.stringify({ cgi_path: cgiPath });
    const { result: r, token } = await this.withToken(
      (t) => this.http.call("POST", `/cgi-bin/openapi/quota/get?access_token=${encodeURIComponent(t)}`, body),
      (res) => (res.ok && typeof res.body.errcode === "number" && classifyErrcode(res.body.errcode) === ErrcodeClass.token ? res.body.errcode : null),
      { api: "quota/get" },
    );
    if (!r.ok) throw new Error(this.scrub(`quota/get failed: ${r.error}`, token));
    const q = r.body.quota as Partial<QuotaView> | undefined;
    if (r.body.errcode !== 0 || !q || typeof q.daily_limit !== "number" || typeof q.used !== "number") {
      throw new Error(this.scrub(`quota/get refused: errcode ${String(r.body.errcode)} ${String(r.body.errmsg ?? "")}`.trim(), token));
    }
    return { daily_limit: q.daily_limit, used: q.used, remain: typeof q.remain === "number" ? q.remain : Math.max(0, q.daily_limit - q.used) };
  }

  /**
   * Runs `call` with the shared access token. When WeChat rejects the token (`tokenErrcode`
   * names the errcode), the token is replaced (a different live one, refreshed only if
   * needed) and `call` runs once more: a token invalidated elsewhere, or left in the bucket
   * from before a restart, costs one extra call, not a failed send or poll. Throws what
   * getting or replacing the token throws.
   */
  private async withToken<R>(call: (token: string) => Promise<R>, tokenErrcode: (r: R) => number | null, context: Record<string, unknown>): Promise<{ result: R; token: string }> {
    let token = await this.tokens.get();
    let result = await call(token);
    const errcode = tokenErrcode(result);
    if (errcode !== null) {
      this.log?.info({ ...context, errcode }, "access token rejected; replacing it and retrying once");
      token = await this.tokens.replace(token);
      result = await call(token);
    }
    return { result, token };
  }

  private async post(token: string, body: string): Promise<Attempt> {
    const r = await this.http.call("POST", `${SEND_PATH}?access_token=${encodeURIComponent(token)}`, body);
    if (!r.ok) {
      this.onCall?.(r.code, r.durationMs, "send");
      // No errcode: WeChat may have taken the message before the answer was lost.
      return { cls: ErrcodeClass.retryable, errcode: null, ...(r.httpStatus !== undefined ? { httpStatus: r.httpStatus } : {}), code: r.code, error: r.error, uncertain: true };
    }
    const errcode = r.body.errcode === undefined ? 0 : r.body.errcode;
    if (typeof errcode !== "number") {
      this.onCall?.("bad_response", r.durationMs, "send");
      return { cls: ErrcodeClass.retryable, errcode: null, httpStatus: 200, code: "bad_response", error: "WeChat answered without a numeric errcode", uncertain: true };
    }
    this.onCall?.(errcode, r.durationMs, "send");
    const cls = classifyErrcode(errcode);
    if (cls === ErrcodeClass.success) {
      const msgid = MSGID.exec(r.text)?.[1];
      return { cls, msgid: msgid ?? String(r.body.msgid ?? "") };
    }
    return { cls, errcode, code: String(errcode), error: `WeChat errcode ${errcode}: ${String(r.body.errmsg ?? "")}`.trim() };
  }

  private tokenFailure(err: unknown, t0: number): SendResult {
    const durationMs = performance.now() - t0;
    if (err instanceof RefreshBudgetSpentError) {
      // WeChat keeps refusing the token and the budget forbids forcing another: wait. Past
      // the daily cap that is hours, so it is parked like a quota rather than retried.
      const kind: SendFailureKind = err.reason === "daily_cap" ? "quota" : "retryable";
      return { kind, errcode: null, code: TOKEN_REFRESH_BUDGET_CODE, error: err.message, durationMs, retryAfterMs: err.retryAfterMs };
    }
    const errcode = err instanceof TokenUnavailableError ? err.errcode : null;
    const error = this.scrub(`access token unavailable: ${err instanceof Error ? err.message : String(err)}`);
    this.log?.warn({ err, appid: this.appId }, "access token unavailable");
    // A missing token is never the message's fault: retry later (and alert on the failure rate).
    return { kind: "retryable", errcode, code: "token_unavailable", error, durationMs };
  }

  /** Errors may quote URLs or echo input: keep the secret and the token out of them. */
  private scrub(s: string, token?: string): string {
    let out = redactUrl(s);
    for (const secret of [this.o.appSecret, token]) if (secret) out = out.split(secret).join("[redacted]");
    return out;
  }

  /** Stops token waits and closes the HTTP pool; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([this.tokens.close(), this.http.close()]);
    })();
    return this.closing;
  }
}

export type { CallCode };
