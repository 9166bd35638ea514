import t from "tap";
import fc from "fast-check";
import { SmsCode, classifySmsCode, maskPhone, maskPhonesIn, signTc3, smsCodeLabel } from "@notify/sms";

t.test("tc3 - Tencent's published signing example gives its published signature", async (t) => {
  // The CVM DescribeInstances example of Tencent's "signature v3" page (example credentials).
  const s = signTc3({
    secretId: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    secretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    service: "cvm",
    timestamp: 1551113065,
    payload: '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
    headers: { "Content-Type": "application/json; charset=utf-8", Host: "cvm.tencentcloudapi.com" },
  });
  t.equal(s.credentialScope, "2019-02-25/cvm/tc3_request");
  t.equal(s.signedHeaders, "content-type;host");
  t.equal(
    s.authorization,
    "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
  );
  t.equal(s.canonicalRequest.split("\n").slice(0, 6).join("|"), "POST|/||content-type:application/json; charset=utf-8|host:cvm.tencentcloudapi.com|");
});

t.test("tc3 - header values are lower-cased and sorted by name; a changed byte changes the signature", async (t) => {
  const base = { secretId: "id", secretKey: "key", service: "sms", timestamp: 1_700_000_000, payload: "{}" };
  const a = signTc3({ ...base, headers: { "X-TC-Action": "SendSms", host: "h", "content-type": "application/json" } });
  const b = signTc3({ ...base, headers: { "content-type": "application/json", "x-tc-action": "sendsms", Host: "h" } });
  t.equal(a.signature, b.signature);
  t.equal(a.signedHeaders, "content-type;host;x-tc-action");
  t.not(signTc3({ ...base, payload: "{ }", headers: { host: "h", "content-type": "application/json" } }).signature, a.signature);
  t.not(signTc3({ ...base, secretKey: "kez", headers: { "X-TC-Action": "SendSms", host: "h", "content-type": "application/json" } }).signature, a.signature);
  t.not(signTc3({ ...base, timestamp: base.timestamp + 86_400, headers: { "X-TC-Action": "SendSms", host: "h", "content-type": "application/json" } }).signature, a.signature);
});

t.test("mask - all but the last 4 digits, shape kept", async (t) => {
  t.equal(maskPhone("+8613812345678"), "+*********5678");
  t.equal(maskPhone("+1 415-555-0123"), "+* ***-***-0123");
  t.equal(maskPhone("123"), "123");
  t.equal(maskPhonesIn("number +8613812345678 is on the list"), "number +*********5678 is on the list");
  fc.assert(
    fc.property(fc.stringMatching(/^\+[1-9]\d{6,14}$/), (p) => {
      const m = maskPhone(p);
      return m.length === p.length && m.endsWith(p.slice(-4)) && !m.slice(1, -4).match(/\d/) && !maskPhonesIn(`x ${p} y`).includes(p.slice(0, -4));
    }),
  );
});

t.test("classification - retryable, permanent and quota codes", async (t) => {
  t.equal(classifySmsCode(SmsCode.ok), "success");
  for (const c of [SmsCode.internalError, SmsCode.internalTimeout, SmsCode.internalOther, SmsCode.requestLimitExceeded, "RequestLimitExceeded.IPLimitExceeded", SmsCode.signatureFailure, SmsCode.signatureExpire, "Something.New"]) {
    t.equal(classifySmsCode(c), "retryable", c);
  }
  for (const c of [SmsCode.templateUnapproved, SmsCode.signUnapproved, SmsCode.incorrectPhone, SmsCode.blacklist, SmsCode.templateParamMismatch, SmsCode.paramLength]) {
    t.equal(classifySmsCode(c), "permanent", c);
  }
  for (const c of [SmsCode.deliveryFrequencyLimit, SmsCode.phoneDailyLimit, SmsCode.appDailyLimit, SmsCode.dailyLimit]) t.equal(classifySmsCode(c), "quota", c);
});

t.test("metric labels - known codes kept, anything else is other (bounded cardinality)", async (t) => {
  for (const code of [SmsCode.ok, SmsCode.blacklist, SmsCode.deliveryFrequencyLimit, SmsCode.internalTimeout, "InternalError.SomethingNew", "timeout", "http_5xx"]) t.equal(smsCodeLabel(code), code, code);
  t.equal(smsCodeLabel("FailedOperation.+8613812345678"), "other", "a code echoing input is not a label");
  t.equal(smsCodeLabel("x".repeat(500)), "other");
});
