import { performance } from "node:perf_hooks";
import { Pool, type Dispatcher } from "undici";
import type { Logger } from "@notify/log";
import { SmsErrorClass, classifySmsCode } from "./errors.js";
import { maskPhone, maskPhonesIn } from "@notify/contracts";
import { signTc3 } from "./sign.js";

/** The real API (mainland China). Point it at tools/sms-simulator locally. */
export const TENCENT_SMS_ENDPOINT = "https://sms.tencentcloudapi.com";
export const SEND_SMS_ACTION = "SendSms";
export const SEND_SMS_VERSION = "2021-01-11";
export const SMS_SERVICE = "sms";

export type SmsFailureKind = "retryable" | "permanent" | "quota";

/**
 * What one `send` ended in. `code` is Tencent's code (`Ok`, `LimitExceeded.…`) or how the
 * HTTP exchange failed: `timeout`, `network`, `http_5xx`, `http_4xx`, `bad_response`, `closed`.
 */
export type SmsSendResult =
  | { kind: "success"; code: "Ok"; serialNo: string; fee: number | null; requestId: string | null; durationMs: number }
  | { kind: SmsFailureKind; code: string; error: string; httpStatus?: number; requestId: string | null; durationMs: number };

export interface SmsSendRequest {
  /** E.164, e.g. +8613812345678. */
  phone: string;
  templateId: string;
  /** TemplateParamSet, in the template's order. */
  params: readonly string[];
  /** Echoed back by Tencent; we pass the send_id. Under 512 bytes. */
  sessionContext?: string;
}

export interface TencentSmsOptions {
  secretId: string;
  secretKey: string;
  sdkAppId: string;
  signName: string;
  /** X-TC-Region (default ap-guangzhou). */
  region?: string;
  /** Default the real API. */
  endpoint?: string;
  /** Bound on every call, end to end (default 5000). */
  timeoutMs?: number;
  connections?: number;
  /** A caller-owned undici dispatcher (not closed by close()). */
  dispatcher?: Dispatcher;
  log?: Logger;
  /** Called once per HTTP call, for metrics. */
  onCall?: (code: string, durationMs: number) => void;
  /** Unix milliseconds, for the X-TC-Timestamp (tests). */
  now?: () => number;
}

/**
 * Tencent Cloud SMS `SendSms` (2021-01-11) over one keep-alive undici Pool, signed with
 * TC3-HMAC-SHA256. One number per call, so one `SendStatusSet` entry decides the result.
 * `send` never throws; the secret key never reaches logs or errors, and phone numbers
 * appear only masked (all but the last 4 digits).
 */
export class TencentSmsClient {
  private readonly pool: Dispatcher;
  private readonly ownsPool: boolean;
  private readonly host: string;
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly region: string;
  private readonly log: Logger | undefined;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: TencentSmsOptions) {
    const url = new URL(o.endpoint ?? TENCENT_SMS_ENDPOINT);
    this.origin = url.origin;
    this.host = url.host;
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.region = o.region ?? "ap-guangzhou";
    this.log = o.log?.child({ component: "tencent-sms" });
    this.ownsPool = !o.dispatcher;
    this.pool =
      o.dispatcher ??
      new Pool(this.origin, {
        connections: o.connections ?? 16,
        keepAliveTimeout: 10_000,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        connect: { timeout: this.timeoutMs },
      });
  }

  /** The exact request body (exported for the tests and the simulator's examples). */
  body(r: SmsSendRequest): string {
    return JSON.stringify({
      PhoneNumberSet: [r.phone],
      SmsSdkAppId: this.o.sdkAppId,
      SignName: this.o.signName,
      TemplateId: r.templateId,
      TemplateParamSet: r.params,
      ...(r.sessionContext !== undefined ? { SessionContext: r.sessionContext } : {}),
    });
  }

  /** Headers for one call, signed at `timestamp` (Unix seconds). */
  headers(payload: string, timestamp: number): Record<string, string> {
    const signed = { "content-type": "application/json; charset=utf-8", host: this.host, "x-tc-action": SEND_SMS_ACTION };
    const sig = signTc3({ secretId: this.o.secretId, secretKey: this.o.secretKey, service: SMS_SERVICE, timestamp, payload, headers: signed });
    return {
      ...signed,
      "x-tc-version": SEND_SMS_VERSION,
      "x-tc-timestamp": String(timestamp),
      "x-tc-region": this.region,
      authorization: sig.authorization,
    };
  }

  async send(r: SmsSendRequest): Promise<SmsSendResult> {
    const t0 = performance.now();
    const masked = maskPhone(r.phone);
    if (this.closing) return { kind: "retryable", code: "closed", error: "SMS client is closed", requestId: null, durationMs: 0 };
    const payload = this.body(r);
    const timestamp = Math.floor((this.o.now?.() ?? Date.now()) / 1000);
    const result = await this.call(payload, this.headers(payload, timestamp), r.phone, t0);
    this.o.onCall?.(result.code, result.durationMs);
    if (result.kind === "success") this.log?.debug({ phone: masked, session: r.sessionContext, serial_no: result.serialNo }, "sms accepted");
    else this.log?.debug({ phone: masked, session: r.sessionContext, kind: result.kind, code: result.code }, "sms not sent");
    return result;
  }

  private async call(payload: string, headers: Record<string, string>, phone: string, t0: number): Promise<SmsSendResult> {
    const ms = () => performance.now() - t0;
    let status: number;
    let text: string;
    try {
      const res = await this.pool.request({ origin: this.origin, path: "/", method: "POST", headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as { name?: string; code?: string; message?: string };
      const timedOut = e.name === "TimeoutError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT" || e.code === "UND_ERR_CONNECT_TIMEOUT";
      if (timedOut) return { kind: "retryable", code: "timeout", error: `Tencent SMS did not answer within ${this.timeoutMs} ms`, requestId: null, durationMs: ms() };
      return { kind: "retryable", code: "network", error: this.scrub(`Tencent SMS request failed: ${e.code ?? ""} ${e.message ?? String(err)}`.trim()), requestId: null, durationMs: ms() };
    }
    if (status !== 200) {
      return { kind: "retryable", code: status >= 500 ? "http_5xx" : "http_4xx", httpStatus: status, error: `Tencent SMS answered HTTP ${status}`, requestId: null, durationMs: ms() };
    }
    const response = parseResponse(text);
    if (!response) return { kind: "retryable", code: "bad_response", httpStatus: 200, error: "Tencent SMS answered without a Response object", requestId: null, durationMs: ms() };
    const requestId = typeof response.RequestId === "string" ? response.RequestId : null;
    const error = response.Error as { Code?: unknown; Message?: unknown } | undefined;
    if (error && typeof error === "object") {
      const code = typeof error.Code === "string" ? error.Code : "bad_response";
      return { kind: failureKind(code), code, error: this.scrub(`${code}: ${String(error.Message ?? "")}`), requestId, durationMs: ms() };
    }
    const set = Array.isArray(response.SendStatusSet) ? (response.SendStatusSet as Array<Record<string, unknown>>) : [];
    // One number per call; prefer the entry that names it (Tencent normalises 86… to +86…).
    const st = set.find((s) => s && s.PhoneNumber === phone) ?? set[0];
    if (!st || typeof st.Code !== "string") return { kind: "retryable", code: "bad_response", httpStatus: 200, error: "Tencent SMS answered without a SendStatusSet entry", requestId, durationMs: ms() };
    if (classifySmsCode(st.Code) === SmsErrorClass.success) {
      return { kind: "success", code: "Ok", serialNo: String(st.SerialNo ?? ""), fee: typeof st.Fee === "number" ? st.Fee : null, requestId, durationMs: ms() };
    }
    return { kind: failureKind(st.Code), code: st.Code, error: this.scrub(`${st.Code}: ${String(st.Message ?? "")}`), requestId, durationMs: ms() };
  }

  /** Provider text may echo the number or quote the request: mask numbers, drop the key. */
  private scrub(s: string): string {
    return maskPhonesIn(s.split(this.o.secretKey).join("[redacted]"));
  }

  close(): Promise<void> {
    this.closing ??= this.ownsPool ? this.pool.close().catch(() => undefined) : Promise.resolve();
    return this.closing;
  }
}

function failureKind(code: string): SmsFailureKind {
  const c = classifySmsCode(code);
  return c === SmsErrorClass.success ? "retryable" : c;
}

function parseResponse(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as { Response?: unknown } | null;
    const r = v && typeof v === "object" ? v.Response : undefined;
    return r && typeof r === "object" && !Array.isArray(r) ? (r as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
