import { hash } from "node:crypto";

/**
 * Business ids come from publishers and may hold any character; KV keys only allow
 * `[-/=.\w]`. Ids made of `[\w-]` are kept readable; anything else becomes
 * `=` + base64url, which cannot collide with a plain id because plain ids never hold `=`.
 *
 * JSON can carry lone UTF-16 surrogates (`"\ud800"`), which UTF-8 cannot: encoding them
 * as UTF-8 would turn each into U+FFFD, so `"\ud800"` and `"\ufffd"` would share a key
 * and one business key would swallow the other's notification. Such ids are encoded as
 * `==` + base64url of their UTF-16 code units (base64url never starts with `=`).
 */
export function encodeKeyToken(id: string): string {
  if (/^[\w-]+$/.test(id)) return id;
  if (LONE_SURROGATE.test(id)) return "==" + Buffer.from(id, "utf16le").toString("base64url");
  return "=" + Buffer.from(id, "utf8").toString("base64url");
}

export function decodeKeyToken(token: string): string {
  if (token === NO_TICKET) return "";
  if (token.startsWith("==")) return Buffer.from(token.slice(2), "base64url").toString("utf16le");
  if (token.startsWith("=")) return Buffer.from(token.slice(1), "base64url").toString("utf8");
  return token;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Stands for "no ticket_id" in a key; an encoded id is never a bare `=`. */
const NO_TICKET = "=";

export interface BusinessKey {
  event: string;
  order_id: string;
  ticket_id?: string | null | undefined;
  channel: string;
}

/** The idempotency key in `notification_locks`: readable, one per business key. */
export function lockKey(k: BusinessKey): string {
  const ticket = k.ticket_id == null || k.ticket_id === "" ? NO_TICKET : encodeKeyToken(k.ticket_id);
  return [k.event, k.channel, encodeKeyToken(k.order_id), ticket].join(".");
}

/**
 * `send_id` is derived from the business key, so every component finds the record of
 * `(event, order_id, ticket_id, channel)` without a scan. It is also the job's
 * `Nats-Msg-Id` and WeChat's `client_msg_id` (32 hex characters plus a prefix).
 */
export function sendIdFor(k: BusinessKey): string {
  // One-shot: no Hash object per call (every event, every preview).
  const h = hash("sha256", lockKey(k), "hex").slice(0, 32);
  return `snd_${h}`;
}

/** What `sendIdFor` produces, and so the only send_id a job or a record can carry. */
export const SEND_ID_PATTERN = /^snd_[0-9a-f]{32}$/;

/** Template key in `notification_templates`: `<event>.<channel>.<language>`. */
export function templateKey(event: string, channel: string, language: string): string {
  return `${event}.${channel}.${language}`;
}

export function parseTemplateKey(key: string): { event: string; channel: string; language: string } | null {
  // event holds one dot (order.paid); language never does.
  const m = /^([a-z]+\.[a-z]+)\.([a-z]+)\.([A-Za-z0-9-]+)$/.exec(key);
  if (!m) return null;
  return { event: m[1]!, channel: m[2]!, language: m[3]! };
}

/** Locale fallback: exact (`en-US`) → language (`en`) → `zh-CN`. */
export const DEFAULT_LANGUAGE = "zh-CN";
export function languageCandidates(locale: string | null | undefined): string[] {
  const out: string[] = [];
  if (locale) {
    out.push(locale);
    const base = locale.split("-")[0];
    if (base && base !== locale) out.push(base);
  }
  if (!out.includes(DEFAULT_LANGUAGE)) out.push(DEFAULT_LANGUAGE);
  return out;
}

/** Key in `wechat_msgids` under which the sender leaves the send a WeChat msgid belongs to (for delivery receipts). */
export function msgidKey(msgid: string): string {
  return `m.${msgid}`;
}

/**
 * Key in `wechat_msgids` for a Tencent SMS SerialNo (the `sid` of its status reports).
 * A SerialNo holds `:`, which KV keys do not allow: it is encoded like a business id.
 */
export function smsSidKey(sid: string): string {
  return `s.${encodeKeyToken(sid)}`;
}

/**
 * Key in `wechat_msgids` under which the WeChat sender leaves a send's prepared SMS
 * fallback job, so a later `failed:user block` receipt can publish it.
 */
export function fallbackJobKey(sendId: string): string {
  return `f.${sendId}`;
}
