/**
 * WeChat answers that mean the traveller cannot be reached there, whatever we retry:
 * 43004 (does not follow the account), 40003 (openid not valid for this account). A
 * template with `fallback: sms` then sends its SMS instead (`publishFallback`, @notify/nats).
 */
export const RECIPIENT_FAILURE_CODES: ReadonlySet<string> = new Set(["43004", "40003"]);
