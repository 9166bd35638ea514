import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { SmsFaultKind } from "./faults.js";
import { parseJson, readBody, sendJson } from "@notify/sim-http";
import { scheduleReport } from "./reports.js";
import type { SmsMessage, SmsSimState } from "./state.js";
import { checkTc3 } from "./tc3.js";

const E164 = /^\+[1-9]\d{6,14}$/;

interface SendStatus {
  SerialNo: string;
  PhoneNumber: string;
  Fee: number;
  SessionContext: string;
  Code: string;
  Message: string;
  IsoCode: string;
}

/**
 * `POST /` with `X-TC-Action: SendSms`, `X-TC-Version: 2021-01-11`: the signature is
 * checked first (a wrong one answers AuthFailure.SignatureFailure), then the action, the
 * faults and the body. Answers are HTTP 200 with Tencent's `{"Response": …}` shapes.
 */
export async function sendSms(s: SmsSimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  s.stats.requests++;
  const requestId = randomUUID();
  const error = (code: string, message: string) => {
    s.stats.errors++;
    sendJson(res, 200, { Response: { Error: { Code: code, Message: message }, RequestId: requestId } });
  };

  const auth = checkTc3(req.headers, body, { secretId: s.cfg.secretId, secretKey: s.cfg.secretKey, service: "sms", nowSec: Math.floor(s.cfg.now() / 1000), maxSkewSec: 300 });
  if (!auth.ok) {
    s.stats.authFailures++;
    return error(auth.code!, auth.message!);
  }
  if (req.headers["x-tc-action"] !== "SendSms") return error("InvalidAction", `The action ${String(req.headers["x-tc-action"])} does not exist.`);
  if (req.headers["x-tc-version"] !== "2021-01-11") return error("NoSuchVersion", "The requested version does not exist.");

  const input = parseJson(body) as Record<string, unknown> | undefined;
  if (!input || typeof input !== "object" || Array.isArray(input)) return error("FailedOperation.JsonParseFail", "The request body is not a JSON object.");
  const phones = input.PhoneNumberSet;
  if (!Array.isArray(phones) || phones.length === 0) return error("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet is empty.");
  if (phones.length > 200) return error("LimitExceeded.PhoneNumberCountLimit", "At most 200 numbers per request.");
  if (phones.some((p) => typeof p !== "string")) return error("InvalidParameter", "PhoneNumberSet must hold strings.");
  if (input.SmsSdkAppId !== s.cfg.sdkAppId) return error("InvalidParameterValue.SdkAppIdNotExist", "The SdkAppId does not exist.");
  if (typeof input.TemplateId !== "string" || !input.TemplateId) return error("MissingParameter", "TemplateId is required.");
  const params = input.TemplateParamSet ?? [];
  if (!Array.isArray(params) || params.some((p) => typeof p !== "string")) return error("InvalidParameter", "TemplateParamSet must hold strings.");
  const session = input.SessionContext ?? "";
  if (typeof session !== "string" || Buffer.byteLength(session) >= 512) return error("InvalidParameterValue", "SessionContext must be a string under 512 bytes.");
  const signName = typeof input.SignName === "string" ? input.SignName : "";

  // Request-level faults (keyed on the first number).
  const f = s.faults.take(phones[0] as string, [SmsFaultKind.http, SmsFaultKind.timeout, SmsFaultKind.error]);
  if (f?.kind === SmsFaultKind.timeout) return; // never answered; the client's time-out fires
  if (f?.kind === SmsFaultKind.http) {
    s.stats.errors++;
    res.writeHead(f.status ?? 502, { "content-type": "text/html" });
    res.end("<html><body>Bad Gateway</body></html>");
    return;
  }
  if (f?.kind === SmsFaultKind.error) return error(f.code!, f.message ?? `${f.code} (injected)`);

  const statuses: SendStatus[] = (phones as string[]).map((phone) => {
    const st = (Code: string, Message: string, SerialNo = ""): SendStatus => ({ SerialNo, PhoneNumber: phone, Fee: Code === "Ok" ? 1 : 0, SessionContext: session, Code, Message, IsoCode: isoCode(phone) });
    const pf = s.faults.take(phone, [SmsFaultKind.status, SmsFaultKind.reportFail]);
    if (pf?.kind === SmsFaultKind.status) return st(pf.code!, pf.message ?? `${pf.code} (injected)`);
    if (!E164.test(phone)) return st("InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number");
    if (s.cfg.approvedTemplates && !s.cfg.approvedTemplates.includes(input.TemplateId as string)) {
      return st("FailedOperation.TemplateIncorrectOrUnapproved", "template is not approved or does not exist");
    }
    if ((params as string[]).some((p) => [...p].length > s.cfg.paramMaxChars)) {
      return st("InvalidParameterValue.TemplateParameterLengthLimit", `a template parameter is longer than ${s.cfg.paramMaxChars} characters`);
    }
    const m: SmsMessage = {
      seq: s.messages.length + 1,
      serialNo: s.nextSerial(),
      phone,
      sdkAppId: s.cfg.sdkAppId,
      signName,
      templateId: input.TemplateId as string,
      params: params as string[],
      sessionContext: session,
      at: Date.now(),
    };
    s.messages.push(m);
    s.stats.accepted++;
    scheduleReport(s, m, pf?.kind === SmsFaultKind.reportFail ? { ...(pf.errmsg ? { errmsg: pf.errmsg } : {}) } : undefined);
    return st("Ok", "send success", m.serialNo);
  });
  sendJson(res, 200, { Response: { SendStatusSet: statuses, RequestId: requestId } });
}

function isoCode(phone: string): string {
  if (phone.startsWith("+86")) return "CN";
  if (phone.startsWith("+852")) return "HK";
  if (phone.startsWith("+1")) return "US";
  return "DEF";
}
