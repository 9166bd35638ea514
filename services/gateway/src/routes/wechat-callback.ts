import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { KV } from "@nats-io/kv";
import { XMLParser } from "fast-xml-parser";
import { Type } from "typebox";
import { RecordStore } from "@notify/nats";
import { CallbackDecryptError, aesKeyFrom, decryptMessage, signatureMatches } from "@notify/wechat";
import { ReceiptNotReadyError, applyReceipt, type Receipt } from "../services/receipts.js";

export interface WeChatCallbackOptions {
  /** The Token set in the account's server configuration. */
  token: string;
  /** The account's appid (safe mode checks the decrypted message was meant for it). */
  appId: string;
  /** The 43-character EncodingAESKey: enables safe mode (`encrypt_type=aes`). */
  encodingAesKey?: string | undefined;
  msgids: KV;
  /** The send records bucket. */
  records: KV;
  /** Wait for a record the receipt overtook (default 2500 ms; WeChat allows 5 s). */
  waitForSuccessMs?: number;
  /** Replay window: a push whose signed `timestamp` is further than this from now is refused (default 300 s). */
  maxAgeSec?: number;
  /** Epoch ms now (tests). */
  now?: () => number;
}

export const DEFAULT_CALLBACK_MAX_AGE_SEC = 300;

export const CALLBACK_PATH = "/wechat/callback";
/** A receipt is a few hundred bytes; anything much larger is not WeChat. */
const BODY_LIMIT = 64 * 1024;

// Values stay text: a MsgID is 64-bit and would lose digits as a JSON number.
// No entity expansion at all: WeChat's XML never uses entities (no XXE, no billion laughs).
const xml = new XMLParser({ parseTagValue: false, processEntities: false, ignoreDeclaration: true, ignoreAttributes: true });

const Query = Type.Object({
  signature: Type.Optional(Type.String({ maxLength: 64 })),
  timestamp: Type.Optional(Type.String({ maxLength: 20 })),
  nonce: Type.Optional(Type.String({ maxLength: 64 })),
  echostr: Type.Optional(Type.String({ maxLength: 512 })),
  encrypt_type: Type.Optional(Type.String({ maxLength: 16 })),
  msg_signature: Type.Optional(Type.String({ maxLength: 64 })),
  openid: Type.Optional(Type.String({ maxLength: 128 })),
});

const text = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");

/** The `<xml>` root of a WeChat push, or null when the body is not one. */
function parseXml(body: string): Record<string, unknown> | null {
  try {
    const doc = xml.parse(body, true) as { xml?: unknown };
    return doc.xml && typeof doc.xml === "object" ? (doc.xml as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * WeChat's server URL for the account: GET verifies the URL (echoes `echostr` when the
 * signature holds), POST receives pushes — plain or safe mode — of which delivery
 * receipts (TEMPLATESENDJOBFINISH) are applied to the send records. Not behind the
 * bearer key (WeChat cannot send one): every request must carry WeChat's signature.
 * Answers "success" once the receipt is applied or known; a 503 makes WeChat push again.
 */
const wechatCallbackRoutes: FastifyPluginAsyncTypebox<WeChatCallbackOptions> = async (app, opts) => {
  const aesKey = opts.encodingAesKey ? aesKeyFrom(opts.encodingAesKey) : null;
  const deps = { msgids: opts.msgids, records: new RecordStore(opts.records), js: app.notify.js, log: app.log, waitForSuccessMs: opts.waitForSuccessMs ?? 2500 };
  const count = (outcome: string) => app.notify.gatewayMetrics.receipts.inc({ outcome });
  const maxAgeSec = opts.maxAgeSec ?? DEFAULT_CALLBACK_MAX_AGE_SEC;
  const now = opts.now ?? Date.now;
  // The signature covers `timestamp`, so an old push replayed verbatim still verifies: its age is the defence.
  // Both directions: a timestamp far in the future would stay "fresh" for ever.
  const fresh = (timestamp: string | undefined) => /^\d{1,12}$/.test(timestamp ?? "") && Math.abs(now() / 1000 - Number(timestamp)) <= maxAgeSec;
  const signed = (q: { signature?: string | undefined; timestamp?: string | undefined; nonce?: string | undefined }) =>
    signatureMatches(q.signature, [opts.token, q.timestamp ?? "", q.nonce ?? ""]);

  app.addContentTypeParser(["text/xml", "application/xml", "text/plain"], { parseAs: "string", bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.get(
    CALLBACK_PATH,
    { schema: { tags: ["WeChat"], summary: "WeChat server URL verification (signature, timestamp, nonce → echostr)", querystring: Query, hide: false } },
    async (request, reply) => {
      const q = request.query;
      if (!signed(q) || !q.echostr) {
        count("refused");
        return reply.code(401).type("text/plain").send("invalid signature");
      }
      return reply.type("text/plain").send(q.echostr);
    },
  );

  app.post(
    CALLBACK_PATH,
    { bodyLimit: BODY_LIMIT, schema: { tags: ["WeChat"], summary: "WeChat pushes: delivery receipts (TEMPLATESENDJOBFINISH), plain or safe mode", querystring: Query } },
    async (request, reply) => {
      const q = request.query;
      const body = typeof request.body === "string" ? request.body : "";
      const refuse = (why: string) => {
        count("refused");
        request.log.warn({ reason: why }, "WeChat callback refused");
        return reply.code(401).type("text/plain").send(why);
      };
      let root = parseXml(body);
      if (q.encrypt_type === "aes") {
        if (!aesKey) return refuse("safe mode is not configured (WECHAT_ENCODING_AES_KEY)");
        const encrypt = text(root?.Encrypt);
        if (!encrypt || !signatureMatches(q.msg_signature, [opts.token, q.timestamp ?? "", q.nonce ?? "", encrypt])) return refuse("invalid msg_signature");
        try {
          root = parseXml(decryptMessage(encrypt, aesKey, opts.appId));
        } catch (err) {
          if (err instanceof CallbackDecryptError) return refuse(`cannot decrypt: ${err.message}`);
          throw err;
        }
      } else if (!signed(q)) {
        return refuse("invalid signature");
      }
      if (!fresh(q.timestamp)) {
        count("too_old");
        request.log.warn({ reason: "timestamp outside the replay window", timestamp: q.timestamp?.slice(0, 20), max_age_sec: maxAgeSec }, "WeChat callback refused");
        return reply.code(401).type("text/plain").send(`timestamp outside the ${maxAgeSec} s replay window`);
      }
      if (!root) {
        count("other_event");
        return reply.code(400).type("text/plain").send("not a WeChat XML message");
      }
      if (text(root.MsgType) !== "event" || text(root.Event) !== "TEMPLATESENDJOBFINISH") {
        // Other pushes (follows, menu clicks) are not ours to handle: acknowledged.
        count("other_event");
        return reply.type("text/plain").send("success");
      }
      const receipt: Receipt = { from: text(root.FromUserName), createTime: text(root.CreateTime), msgId: text(root.MsgID ?? root.MsgId), status: text(root.Status) };
      if (!/^\d{1,20}$/.test(receipt.msgId) || !receipt.from || !/^\d{1,12}$/.test(receipt.createTime)) {
        count("other_event");
        return reply.code(400).type("text/plain").send("TEMPLATESENDJOBFINISH without MsgID, FromUserName or CreateTime");
      }
      try {
        count(await applyReceipt(deps, receipt));
      } catch (err) {
        if (!(err instanceof ReceiptNotReadyError)) throw err;
        count("not_ready");
        return reply.code(503).type("text/plain").send("not ready: push again");
      }
      return reply.type("text/plain").send("success");
    },
  );
};

export default wechatCallbackRoutes;
