import type { ReportPush, SmsMessage, SmsSimState, StatusReport } from "./state.js";

/** A report for one accepted message: delivered, or FAIL with the carrier's errmsg. */
export function reportFor(m: SmsMessage, fail?: { errmsg?: string }, at = Date.now()): StatusReport {
  const { nationcode, mobile } = splitE164(m.phone);
  return {
    user_receive_time: new Date(at + 8 * 3600_000).toISOString().slice(0, 19).replace("T", " "),
    nationcode,
    mobile,
    report_status: fail ? "FAIL" : "SUCCESS",
    errmsg: fail ? (fail.errmsg ?? "MK:0001") : "DELIVRD",
    description: fail ? "用户短信接收失败" : "用户短信送达成功",
    sid: m.serialNo,
  };
}

/**
 * POSTs a JSON array of reports to the callback URL, as Tencent does (several reports may
 * share one request). Never throws: the answer (or the failure) is kept in `pushes`.
 */
export async function pushReports(sim: SmsSimState, reports: StatusReport[], url = sim.reportUrl): Promise<ReportPush | null> {
  if (!url || reports.length === 0) return null;
  const push: ReportPush = { at: Date.now(), url, reports, status: null, body: "" };
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(reports), signal: AbortSignal.timeout(5000) });
    push.status = res.status;
    push.body = (await res.text()).slice(0, 2000);
  } catch (err) {
    push.body = `push failed: ${(err as Error).message}`;
  }
  sim.pushes.push(push);
  sim.stats.reportsPushed += reports.length;
  return push;
}

/** Pushes one message's report after the configured delay. */
export function scheduleReport(sim: SmsSimState, m: SmsMessage, fail?: { errmsg?: string }): void {
  if (!sim.reportUrl) return;
  const t = setTimeout(() => {
    sim.timers.delete(t);
    void pushReports(sim, [reportFor(m, fail)]);
  }, sim.cfg.reportDelayMs);
  sim.timers.add(t);
}

/** ITU two-digit country codes; 1 and 7 are one digit, every other code three. */
const TWO_DIGIT_CODES = /^(20|27|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])/;

/** "+8613812345678" → { nationcode: "86", mobile: "13812345678" } (1-, 2- and 3-digit codes). */
export function splitE164(phone: string): { nationcode: string; mobile: string } {
  const d = phone.replace(/^\+/, "");
  const len = d.startsWith("1") || d.startsWith("7") ? 1 : TWO_DIGIT_CODES.test(d) ? 2 : 3;
  return { nationcode: d.slice(0, len), mobile: d.slice(len) };
}
