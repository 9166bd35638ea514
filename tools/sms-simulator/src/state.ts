import { SmsFaults } from "./faults.js";

export const DEFAULT_SECRET_ID = "AKIDlocalsmssimulator";
export const DEFAULT_SECRET_KEY = "local-sms-simulator-key";
export const DEFAULT_SDK_APP_ID = "1400000000";

export interface SmsSimulatorOptions {
  port?: number;
  host?: string;
  secretId?: string;
  secretKey?: string;
  sdkAppId?: string;
  /** Where status reports are pushed (Tencent's "status report callback URL"); none = no pushes. */
  reportUrl?: string;
  /** Delay before a report is pushed (default 50 ms). */
  reportDelayMs?: number;
  /** Template ids the simulator treats as approved; absent = every id. */
  approvedTemplates?: readonly string[];
  /** Longest accepted parameter, in characters (default 12, Tencent's limit for personal accounts). */
  paramMaxChars?: number;
  /** Clock for the signature's timestamp check (ms). */
  now?: () => number;
}

/** One accepted SMS, as the (simulated) phone received it. */
export interface SmsMessage {
  seq: number;
  serialNo: string;
  phone: string;
  sdkAppId: string;
  signName: string;
  templateId: string;
  params: string[];
  sessionContext: string;
  at: number;
}

/** One status-report push and how the callback answered. */
export interface ReportPush {
  at: number;
  url: string;
  reports: StatusReport[];
  status: number | null;
  body: string;
}

/** Tencent's status report, one element of the callback's JSON array. */
export interface StatusReport {
  user_receive_time: string;
  nationcode: string;
  mobile: string;
  report_status: "SUCCESS" | "FAIL";
  errmsg: string;
  description: string;
  sid: string;
}

export interface SmsSimStats {
  requests: number;
  accepted: number;
  authFailures: number;
  errors: number;
  reportsPushed: number;
}

export class SmsSimState {
  readonly faults = new SmsFaults();
  readonly messages: SmsMessage[] = [];
  readonly pushes: ReportPush[] = [];
  readonly stats: SmsSimStats = { requests: 0, accepted: 0, authFailures: 0, errors: 0, reportsPushed: 0 };
  readonly timers = new Set<NodeJS.Timeout>();
  reportUrl: string | undefined;
  private serial = 0;

  constructor(readonly cfg: Required<Omit<SmsSimulatorOptions, "reportUrl" | "approvedTemplates" | "port" | "host">> & { approvedTemplates?: readonly string[] }, reportUrl?: string) {
    this.reportUrl = reportUrl;
  }

  nextSerial(): string {
    return `2433:${String(Date.now()).slice(-9)}${String(++this.serial).padStart(6, "0")}`;
  }

  reset(): void {
    this.messages.length = 0;
    this.pushes.length = 0;
    this.faults.clear();
    Object.assign(this.stats, { requests: 0, accepted: 0, authFailures: 0, errors: 0, reportsPushed: 0 });
  }
}
