/**
 * WeChat's server-URL ("message push") protocol: the signature on every callback and the
 * safe-mode encryption of its body. Used by the gateway's receipt route and by the
 * simulator that pushes receipts, so both follow one reading of WeChat's rules:
 *
 * - signature = SHA1 of [token, timestamp, nonce] sorted and joined;
 * - safe mode: msg_signature = SHA1 of [token, timestamp, nonce, Encrypt] sorted and joined;
 *   Encrypt = Base64(AES-256-CBC(random 16 bytes + 4-byte big-endian length + XML + appid)),
 *   key = Base64(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7 padding to 32.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto";

const BLOCK = 32;

export function sha1Signature(parts: readonly string[]): string {
  return createHash("sha1").update([...parts].sort().join("")).digest("hex");
}

/** Constant-time comparison of a signature the caller sent with the one we compute. */
export function signatureMatches(given: string | undefined | null, parts: readonly string[]): boolean {
  if (typeof given !== "string" || given.length !== 40) return false;
  const want = Buffer.from(sha1Signature(parts), "utf8");
  return timingSafeEqual(Buffer.from(given.toLowerCase(), "utf8"), want);
}

/** The 32-byte AES key from the 43-character EncodingAESKey; throws if it is not one. */
export function aesKeyFrom(encodingAesKey: string): Buffer {
  if (!/^[A-Za-z0-9+/]{43}$/.test(encodingAesKey)) throw new Error("EncodingAESKey must be 43 characters of [A-Za-z0-9+/]");
  const key = Buffer.from(`${encodingAesKey}=`, "base64");
  if (key.length !== 32) throw new Error("EncodingAESKey does not decode to 32 bytes");
  return key;
}

export class CallbackDecryptError extends Error {
  override name = "CallbackDecryptError";
}

/** Decrypts an `Encrypt` value; checks padding, length and that the appid is ours. */
export function decryptMessage(encrypt: string, key: Buffer, appId: string): string {
  let plain: Buffer;
  try {
    const d = createDecipheriv("aes-256-cbc", key, key.subarray(0, 16));
    d.setAutoPadding(false);
    plain = Buffer.concat([d.update(Buffer.from(encrypt, "base64")), d.final()]);
  } catch (err) {
    throw new CallbackDecryptError("not AES-256-CBC ciphertext under this key", { cause: err });
  }
  const pad = plain.at(-1) ?? 0;
  if (pad < 1 || pad > BLOCK || plain.length < 20 + pad || !plain.subarray(plain.length - pad).every((b) => b === pad)) {
    throw new CallbackDecryptError("bad padding");
  }
  const body = plain.subarray(16, plain.length - pad);
  const len = body.readUInt32BE(0);
  if (len > body.length - 4) throw new CallbackDecryptError("bad message length");
  const xml = body.subarray(4, 4 + len).toString("utf8");
  const from = body.subarray(4 + len).toString("utf8");
  if (from !== appId) throw new CallbackDecryptError("encrypted for another appid");
  return xml;
}

/** Encrypts a message as WeChat does in safe mode (the simulator's pushes and tests). */
export function encryptMessage(xml: string, key: Buffer, appId: string): string {
  const msg = Buffer.from(xml, "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length, 0);
  const raw = Buffer.concat([randomBytes(16), len, msg, Buffer.from(appId, "utf8")]);
  const pad = BLOCK - (raw.length % BLOCK);
  const c = createCipheriv("aes-256-cbc", key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.concat([raw, Buffer.alloc(pad, pad)])), c.final()]).toString("base64");
}
