export { TencentSmsClient, TENCENT_SMS_ENDPOINT, SEND_SMS_ACTION, SEND_SMS_VERSION, SMS_SERVICE, type SmsSendResult, type SmsSendRequest, type SmsFailureKind, type TencentSmsOptions } from "./client.js";
export { SmsCode, SmsErrorClass, classifySmsCode, smsCodeLabel } from "./errors.js";
// Masking lives with the contract (records carry masked numbers); re-exported for callers of this client.
export { maskPhone, maskPhonesIn } from "@notify/contracts";
export { signTc3, tc3Date, TC3_ALGORITHM, type Tc3Input, type Tc3Signature } from "./sign.js";
