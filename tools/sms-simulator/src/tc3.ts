import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/**
 * The simulator's own check of a TC3-HMAC-SHA256 signature, written apart from the
 * client's signer (libs/sms) so a mistake in one is caught by the other; the client's
 * signer is also pinned to Tencent's published example.
 */
export interface Tc3Check {
  ok: boolean;
  /** Tencent's error code when not ok. */
  code?: "AuthFailure.InvalidAuthorization" | "AuthFailure.SecretIdNotFound" | "AuthFailure.SignatureExpire" | "AuthFailure.SignatureFailure";
  message?: string;
}

const AUTH = /^TC3-HMAC-SHA256 Credential=([^/\s]+)\/(\d{4}-\d{2}-\d{2})\/([a-z]+)\/tc3_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

export function checkTc3(
  headers: IncomingHttpHeaders,
  body: string,
  keys: { secretId: string; secretKey: string; service: string; nowSec: number; maxSkewSec: number },
): Tc3Check {
  const auth = header(headers, "authorization");
  const m = AUTH.exec(auth);
  if (!m) return { ok: false, code: "AuthFailure.InvalidAuthorization", message: "Authorization header is not a TC3-HMAC-SHA256 authorization." };
  const [, secretId, date, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  if (secretId !== keys.secretId) return { ok: false, code: "AuthFailure.SecretIdNotFound", message: "The SecretId is not found." };
  const ts = Number(header(headers, "x-tc-timestamp"));
  if (!Number.isInteger(ts) || Math.abs(keys.nowSec - ts) > keys.maxSkewSec) {
    return { ok: false, code: "AuthFailure.SignatureExpire", message: "Signature expired. Timestamp and server time cannot differ by more than five minutes." };
  }
  const names = signedHeaders.split(";");
  const fail = { ok: false, code: "AuthFailure.SignatureFailure", message: "The provided credentials could not be validated. Please check your signature is correct." } as const;
  if (service !== keys.service || date !== new Date(ts * 1000).toISOString().slice(0, 10)) return fail;
  if (!names.includes("content-type") || !names.includes("host") || names.join(";") !== [...names].sort().join(";")) return fail;
  const canonicalHeaders = names.map((n) => `${n}:${header(headers, n).trim().toLowerCase()}\n`).join("");
  const hashedBody = createHash("sha256").update(body, "utf8").digest("hex");
  const canonical = `POST\n/\n\n${canonicalHeaders}\n${signedHeaders}\n${hashedBody}`;
  const toSign = `TC3-HMAC-SHA256\n${ts}\n${date}/${service}/tc3_request\n${createHash("sha256").update(canonical, "utf8").digest("hex")}`;
  let k = createHmac("sha256", `TC3${keys.secretKey}`).update(date).digest();
  k = createHmac("sha256", k).update(service).digest();
  k = createHmac("sha256", k).update("tc3_request").digest();
  const expected = createHmac("sha256", k).update(toSign, "utf8").digest();
  const given = Buffer.from(signature, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected) ? { ok: true } : fail;
}

function header(h: IncomingHttpHeaders, name: string): string {
  const v = h[name];
  return Array.isArray(v) ? v.join(",") : (v ?? "");
}
