/**
 * How the sender treats each WeChat answer (docs/ARCHITECTURE.md, "Retry policy"). `token` is internal to the
 * client: it refreshes the shared token and retries once, and reports `retryable` if
 * WeChat still refuses.
 */
export const ErrcodeClass = {
  success: "success",
  retryable: "retryable",
  token: "token",
  permanent: "permanent",
  quota: "quota",
} as const;
export type ErrcodeClass = (typeof ErrcodeClass)[keyof typeof ErrcodeClass];

/** The WeChat errcodes the client knows by name. */
export const WeChatErrcode = {
  ok: 0,
  systemBusy: -1,
  invalidCredential: 40001,
  invalidOpenid: 40003,
  invalidAccessToken: 40014,
  invalidTemplateIdSize: 40036,
  invalidTemplateId: 40037,
  accessTokenMissing: 41001,
  accessTokenExpired: 42001,
  requireSubscribe: 43004,
  inBlacklist: 43019,
  dailyQuota: 45009,
  minuteQuota: 45011,
  dataFormat: 47001,
  argumentInvalid: 47003,
  apiUnauthorized: 48001,
  userBlocked: 48002,
  invalidAppid: 40013,
  invalidAppsecret: 40125,
  ipNotWhitelisted: 40164,
  appsecretFrozen: 40243,
  appidMissing: 41002,
  appsecretMissing: 41004,
  ipNeedsConfirmation: 89503,
} as const;

const TOKEN = new Set<number>([40001, 40014, 41001, 42001]);

/**
 * Answers that no retry can change: the user is not following, blocked us or does not
 * exist; the template or the payload is wrong; the account may not call the API.
 */
const PERMANENT = new Set<number>([40003, 40036, 40037, 43004, 43019, 47001, 47003, 48001, 48002]);

/**
 * Answers about the account's own set-up, not the message: wrong or frozen appid/secret,
 * the server's IP not on the account's whitelist (or awaiting an admin's confirmation), no
 * permission for the API. Every send fails alike until someone fixes the console, so the
 * sender alerts at once (`account_config`) instead of waiting for a failure streak; the job
 * keeps its own class (a token refusal stays retryable, 48001 permanent).
 */
const ACCOUNT_CONFIG = new Set<number>([40013, 40125, 40164, 40243, 41002, 41004, 48001, 89503]);

export function isAccountConfigErrcode(errcode: number | null): boolean {
  return errcode !== null && ACCOUNT_CONFIG.has(errcode);
}

/**
 * Classifies a WeChat errcode. -1 (system busy) and 45011 (per-minute limit) are
 * retryable; 45009 (daily quota) parks the job instead of burning its retries.
 *
 * Unknown errcodes are `retryable`: a retry of the same `client_msg_id` cannot deliver
 * twice (WeChat de-duplicates it for 10 minutes), while calling an unknown answer
 * permanent would drop a message WeChat might have taken a minute later. A truly
 * permanent unknown code still ends in the DLQ after max_deliver attempts.
 */
export function classifyErrcode(errcode: number): ErrcodeClass {
  if (errcode === 0) return ErrcodeClass.success;
  if (TOKEN.has(errcode)) return ErrcodeClass.token;
  if (PERMANENT.has(errcode)) return ErrcodeClass.permanent;
  if (errcode === WeChatErrcode.dailyQuota) return ErrcodeClass.quota;
  return ErrcodeClass.retryable;
}
