import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CONTROL_PREFIX, control } from "./control.js";
import type { SmsFault, SmsFaultSpec } from "./faults.js";
import { BodyTooLargeError, sendJson } from "@notify/sim-http";
import { pushReports, reportFor } from "./reports.js";
import { sendSms } from "./send-sms.js";
import { DEFAULT_SDK_APP_ID, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, SmsSimState, type ReportPush, type SmsMessage, type SmsSimStats, type SmsSimulatorOptions } from "./state.js";

export interface SmsSimulator {
  /** Use as TENCENT_SMS_ENDPOINT. */
  readonly url: string;
  readonly port: number;
  readonly secretId: string;
  readonly sdkAppId: string;
  readonly messages: readonly SmsMessage[];
  readonly pushes: readonly ReportPush[];
  messagesTo(phone: string): readonly SmsMessage[];
  setFault(spec: SmsFaultSpec): SmsFault;
  clearFaults(filter?: { phone?: string }): number;
  setReportUrl(url: string | undefined): void;
  /** Pushes a message's status report now (`times` copies), whatever the report URL's timer does. */
  pushReport(sid: string, opts?: { fail?: { errmsg?: string }; times?: number }): Promise<ReportPush[]>;
  stats(): SmsSimStats;
  reset(): void;
  close(): Promise<void>;
}

/** Starts a Tencent Cloud SMS simulator on a real HTTP port (a free one by default). */
export async function startSmsSimulator(opts: SmsSimulatorOptions = {}): Promise<SmsSimulator> {
  const s = new SmsSimState(
    {
      secretId: opts.secretId ?? DEFAULT_SECRET_ID,
      secretKey: opts.secretKey ?? DEFAULT_SECRET_KEY,
      sdkAppId: opts.sdkAppId ?? DEFAULT_SDK_APP_ID,
      reportDelayMs: opts.reportDelayMs ?? 50,
      paramMaxChars: opts.paramMaxChars ?? 12,
      now: opts.now ?? Date.now,
      ...(opts.approvedTemplates ? { approvedTemplates: opts.approvedTemplates } : {}),
    },
    opts.reportUrl,
  );
  const server = createServer({ keepAlive: true }, (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
    const work = path === "/" && req.method === "POST" ? sendSms(s, req, res) : path.startsWith(CONTROL_PREFIX) ? control(s, req, res, path, query) : Promise.resolve(sendJson(res, 404, { error: `no route ${req.method} ${path}` }));
    work.catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) return sendJson(res, 413, { Response: { Error: { Code: "InvalidParameter", Message: err.message } } });
      if (!res.destroyed) sendJson(res, 500, { Response: { Error: { Code: "InternalError", Message: "simulator error" } } });
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = !opts.host || opts.host === "0.0.0.0" ? "127.0.0.1" : opts.host;
  return new Handle(s, server, `http://${host}:${port}`, port);
}

class Handle implements SmsSimulator {
  private closing: Promise<void> | null = null;
  constructor(
    private readonly s: SmsSimState,
    private readonly server: Server,
    readonly url: string,
    readonly port: number,
  ) {}
  get secretId() {
    return this.s.cfg.secretId;
  }
  get sdkAppId() {
    return this.s.cfg.sdkAppId;
  }
  get messages() {
    return this.s.messages;
  }
  get pushes() {
    return this.s.pushes;
  }
  messagesTo(phone: string) {
    return this.s.messages.filter((m) => m.phone === phone);
  }
  setFault(spec: SmsFaultSpec) {
    return this.s.faults.add(spec);
  }
  clearFaults(filter: { phone?: string } = {}) {
    return this.s.faults.clear(filter);
  }
  setReportUrl(url: string | undefined) {
    this.s.reportUrl = url;
  }
  async pushReport(sid: string, opts: { fail?: { errmsg?: string }; times?: number } = {}) {
    const m = this.s.messages.find((x) => x.serialNo === sid);
    if (!m) throw new Error(`no message with sid ${sid}`);
    const out: ReportPush[] = [];
    for (let i = 0; i < (opts.times ?? 1); i++) {
      const p = await pushReports(this.s, [reportFor(m, opts.fail)]);
      if (p) out.push(p);
    }
    return out;
  }
  stats() {
    return { ...this.s.stats };
  }
  reset() {
    this.s.reset();
  }
  close() {
    this.closing ??= new Promise<void>((resolve) => {
      for (const t of this.s.timers) clearTimeout(t);
      this.s.timers.clear();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}
