/**
 * The WeChat errcodes the simulator answers with, and their real errmsg texts. Real
 * responses append ` rid: <hex>`; the simulator does too, so clients never match on
 * the message.
 */
export const Errcode = {
  systemBusy: -1,
  ok: 0,
  invalidCredential: 40001,
  invalidGrantType: 40002,
  invalidOpenid: 40003,
  invalidAppid: 40013,
  invalidAccessToken: 40014,
  invalidTemplateIdSize: 40036,
  invalidTemplateId: 40037,
  invalidAppSecret: 40125,
  ipNotWhitelisted: 40164,
  accessTokenMissing: 41001,
  appidMissing: 41002,
  appSecretMissing: 41004,
  accessTokenExpired: 42001,
  requireSubscribe: 43004,
  inBlacklist: 43019,
  emptyPostData: 44002,
  dailyQuota: 45009,
  minuteQuota: 45011,
  dataFormat: 47001,
  argumentInvalid: 47003,
  apiUnauthorized: 48001,
  userBlocked: 48002,
  cgiPathNotFound: 76021,
} as const;

const ERRMSG: Record<number, string> = {
  [-1]: "system error",
  0: "ok",
  40001: "invalid credential, access_token is invalid or not latest",
  40002: "invalid grant_type",
  40003: "invalid openid",
  40013: "invalid appid",
  40014: "invalid access_token",
  40036: "invalid template_id size",
  40037: "invalid template_id",
  40125: "invalid appsecret",
  40164: "invalid ip, not in whitelist",
  41001: "access_token missing",
  41002: "appid missing",
  41004: "appsecret missing",
  42001: "access_token expired",
  43004: "require subscribe",
  43019: "require remove blacklist",
  44002: "empty post data",
  45009: "reach max api daily quota limit",
  45011: "api minute-quota reach limit, must slower, retry next minute",
  47001: "data format error",
  47003: "argument invalid!",
  48001: "api unauthorized",
  48002: "api forbidden",
  76021: "cgi_path not found, please check",
};

let rid = Math.floor(Math.random() * 0xffffff);

/** `errmsg` as WeChat words it, with a request id. */
export function errmsgFor(errcode: number, override?: string): string {
  if (errcode === 0) return "ok";
  rid = (rid + 1) & 0xffffffff;
  const base = override ?? ERRMSG[errcode] ?? "unknown error";
  return `${base} rid: ${rid.toString(16).padStart(8, "0")}-simulator`;
}

export interface ErrorBody {
  errcode: number;
  errmsg: string;
}

export function errorBody(errcode: number, override?: string): ErrorBody {
  return { errcode, errmsg: errmsgFor(errcode, override) };
}
