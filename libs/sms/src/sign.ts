import { createHash, createHmac } from "node:crypto";

/**
 * Tencent Cloud API v3 request signing (TC3-HMAC-SHA256), for a POST with a JSON body:
 *
 *   CanonicalRequest = POST \n / \n (empty query) \n lower(name):lower(trim(value))\n… \n SignedHeaders \n hex(sha256(body))
 *   StringToSign     = TC3-HMAC-SHA256 \n timestamp \n date/service/tc3_request \n hex(sha256(CanonicalRequest))
 *   key              = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
 *   Signature        = hex(HMAC(key, StringToSign))
 *
 * `date` is the UTC day of `timestamp`; Tencent refuses a timestamp more than 5 minutes off.
 */
export const TC3_ALGORITHM = "TC3-HMAC-SHA256";

export interface Tc3Input {
  secretId: string;
  secretKey: string;
  /** `sms` for Tencent Cloud SMS. */
  service: string;
  /** Unix seconds; also the X-TC-Timestamp header. */
  timestamp: number;
  /** The exact body bytes sent. */
  payload: string;
  /**
   * The signed headers by name (any case). `content-type` and `host` at least; we also sign
   * `x-tc-action` so a signature for one action cannot be replayed on another.
   */
  headers: Record<string, string>;
}

export interface Tc3Signature {
  authorization: string;
  signature: string;
  signedHeaders: string;
  credentialScope: string;
  canonicalRequest: string;
  stringToSign: string;
}

const sha256Hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const hmac = (key: string | Buffer, s: string) => createHmac("sha256", key).update(s, "utf8").digest();

/** The UTC date (YYYY-MM-DD) of a Unix timestamp in seconds. */
export function tc3Date(timestamp: number): string {
  return new Date(timestamp * 1000).toISOString().slice(0, 10);
}

export function signTc3(i: Tc3Input): Tc3Signature {
  const entries = Object.entries(i.headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim().toLowerCase()] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = entries.map(([k]) => k).join(";");
  const canonicalHeaders = entries.map(([k, v]) => `${k}:${v}\n`).join("");
  const canonicalRequest = ["POST", "/", "", canonicalHeaders, signedHeaders, sha256Hex(i.payload)].join("\n");
  const date = tc3Date(i.timestamp);
  const credentialScope = `${date}/${i.service}/tc3_request`;
  const stringToSign = [TC3_ALGORITHM, String(i.timestamp), credentialScope, sha256Hex(canonicalRequest)].join("\n");
  const key = hmac(hmac(hmac(`TC3${i.secretKey}`, date), i.service), "tc3_request");
  const signature = createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
  const authorization = `${TC3_ALGORITHM} Credential=${i.secretId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { authorization, signature, signedHeaders, credentialScope, canonicalRequest, stringToSign };
}
