/**
 * How the sender treats each Tencent Cloud SMS answer. Codes come from two places: the
 * request-level `Response.Error.Code` (signature, rate limit, bad parameters) and the
 * per-number `SendStatusSet[].Code` (`Ok` when accepted).
 */
export const SmsErrorClass = {
  success: "success",
  retryable: "retryable",
  permanent: "permanent",
  quota: "quota",
} as const;
export type SmsErrorClass = (typeof SmsErrorClass)[keyof typeof SmsErrorClass];

/** The codes named in tests, the simulator and the README. */
export const SmsCode = {
  ok: "Ok",
  signatureFailure: "AuthFailure.SignatureFailure",
  signatureExpire: "AuthFailure.SignatureExpire",
  secretIdNotFound: "AuthFailure.SecretIdNotFound",
  internalError: "InternalError",
  internalTimeout: "InternalError.Timeout",
  internalOther: "InternalError.OtherError",
  requestLimitExceeded: "RequestLimitExceeded",
  templateUnapproved: "FailedOperation.TemplateIncorrectOrUnapproved",
  signUnapproved: "FailedOperation.SignatureIncorrectOrUnapproved",
  templateParamMismatch: "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
  sensitiveWord: "FailedOperation.ContainSensitiveWord",
  blacklist: "FailedOperation.PhoneNumberInBlacklist",
  incorrectPhone: "InvalidParameterValue.IncorrectPhoneNumber",
  paramLength: "InvalidParameterValue.TemplateParameterLengthLimit",
  contentLength: "InvalidParameterValue.ContentLengthLimit",
  sdkAppIdNotExist: "InvalidParameterValue.SdkAppIdNotExist",
  sdkAppIdVerifyFail: "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
  deliveryFrequencyLimit: "LimitExceeded.DeliveryFrequencyLimit",
  phoneDailyLimit: "LimitExceeded.PhoneNumberDailyLimit",
  appDailyLimit: "LimitExceeded.AppDailyLimit",
  dailyLimit: "LimitExceeded.DailyLimit",
  phoneOneHourLimit: "LimitExceeded.PhoneNumberOneHourLimit",
  phoneThirtySecondLimit: "LimitExceeded.PhoneNumberThirtySecondLimit",
  phoneSameContentDailyLimit: "LimitExceeded.PhoneNumberSameContentDailyLimit",
  insufficientBalance: "FailedOperation.InsufficientBalanceInSmsPackage",
} as const;

/**
 * No retry changes these: the template or signature is not approved (or the params do not
 * fit it), the number is invalid or on the do-not-disturb list, the app id is wrong.
 */
const PERMANENT = new Set<string>([
  SmsCode.templateUnapproved,
  SmsCode.signUnapproved,
  SmsCode.templateParamMismatch,
  SmsCode.sensitiveWord,
  SmsCode.blacklist,
  SmsCode.incorrectPhone,
  SmsCode.paramLength,
  SmsCode.contentLength,
  SmsCode.sdkAppIdNotExist,
  SmsCode.sdkAppIdVerifyFail,
  "FailedOperation.MissingTemplateToModify",
  "FailedOperation.JsonParseFail",
  "FailedOperation.FailResolvePacket",
  "InvalidParameterValue.TemplateParameterFormatError",
  "InvalidParameterValue.InvalidInternationalPhoneNumber",
  "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
  "UnsupportedOperation.UnsupportedRegion",
  "MissingParameter.EmptyPhoneNumberSet",
  "UnauthorizedOperation.RequestPermissionDeny",
  "UnauthorizedOperation.SerivceSuspendDueToArrears",
]);

/**
 * Frequency and daily limits, and an empty SMS package: the same number (or the whole app)
 * may not be sent to again until a window resets, so the job is parked instead of burning
 * its retries (the WeChat 45009 rule).
 */
const QUOTA = new Set<string>([
  SmsCode.deliveryFrequencyLimit,
  SmsCode.phoneDailyLimit,
  SmsCode.appDailyLimit,
  SmsCode.dailyLimit,
  SmsCode.phoneOneHourLimit,
  SmsCode.phoneThirtySecondLimit,
  SmsCode.phoneSameContentDailyLimit,
  SmsCode.insufficientBalance,
]);

/**
 * Classifies a Tencent Cloud SMS code. Retryable: `InternalError.*`, the per-second
 * `RequestLimitExceeded.*`, and `AuthFailure.*` (a clock skew or a key being rotated is
 * never the message's fault; a wrong key ends in the DLQ after max_deliver attempts).
 * Unknown codes are retryable for the same reason as WeChat's: a retry costs little, a
 * wrong `permanent` drops a message for good.
 */
export function classifySmsCode(code: string): SmsErrorClass {
  if (code === SmsCode.ok) return SmsErrorClass.success;
  if (PERMANENT.has(code)) return SmsErrorClass.permanent;
  if (QUOTA.has(code)) return SmsErrorClass.quota;
  return SmsErrorClass.retryable;
}

/** How the client names an HTTP exchange that never produced a Tencent code. */
const TRANSPORT = new Set<string>(["timeout", "network", "http_5xx", "http_4xx", "bad_response", "closed"]);
const KNOWN = new Set<string>([...Object.values(SmsCode), ...PERMANENT, ...QUOTA, ...TRANSPORT]);

/** A code as a metric label: the known ones as they are, anything else `other` (bounded cardinality). */
export function smsCodeLabel(code: string): string {
  return KNOWN.has(code) || /^(InternalError|RequestLimitExceeded|AuthFailure)(\.[A-Za-z]+)?$/.test(code) ? code : "other";
}
