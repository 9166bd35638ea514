import { randomBytes } from "node:crypto";
import { aesKeyFrom, encryptMessage, sha1Signature } from "@notify/wechat/callback";

/** WeChat's TEMPLATESENDJOBFINISH Status values. */
export const ReceiptStatus = { success: "success", userBlock: "failed:user block", systemFailed: "failed: system failed" } as const;
export type ReceiptStatus = (typeof ReceiptStatus)[keyof typeof ReceiptStatus];

/** Where and how the simulator pushes delivery receipts (the account's server configuration). */
export interface ReceiptTarget {
  url: string;
  token: string;
  /** The EncodingAESKey: pushes go out in safe mode (encrypted) when set. */
  encodingAesKey?: string;
  /** Wait after accepting a message before pushing its receipt (default 100 ms). */
  delayMs?: number;
}

/** One push as the simulator made it, with what the server answered. */
export interface ReceiptPush {
  msgid: string;
  touser: string;
  status: ReceiptStatus;
  createTime: number;
  mode: "plain" | "aes";
  /** HTTP status of each try (0 = no answer); WeChat tries up to 3 times more. */
  answers: number[];
  body: string;
  forged: boolean;
}

/**
 * Pushes delivery receipts to a server URL as WeChat does: XML, signed with the token
 * (query `signature`, `timestamp`, `nonce`), or encrypted in safe mode (`encrypt_type=aes`,
 * `msg_signature`). An answer other than HTTP 200 within 5 s is retried up to 3 times,
 * with the same CreateTime (so the receiver can de-duplicate).
 */
export class ReceiptPusher {
  private target: ReceiptTarget | null = null;
  private readonly outcomes = new Map<string, ReceiptStatus>();
  readonly pushes: ReceiptPush[] = [];

  constructor(
    private readonly appId: string,
    private readonly schedule: (ms: number, fn: () => void) => void,
  ) {}

  configure(target: ReceiptTarget | null): void {
    if (target?.encodingAesKey) aesKeyFrom(target.encodingAesKey); // refuse a bad key now
    this.target = target;
  }

  get configured(): boolean {
    return this.target !== null;
  }

  /** The receipt status for messages to this openid (default success); null clears. */
  setOutcome(openid: string, status: ReceiptStatus | null): void {
    if (status === null) this.outcomes.delete(openid);
    else this.outcomes.set(openid, status);
  }

  /** Called when a message is accepted: its receipt follows after the configured delay. */
  accepted(msgid: number, touser: string): void {
    const t = this.target;
    if (!t) return;
    const createTime = Math.floor(Date.now() / 1000);
    this.schedule(t.delayMs ?? 100, () => void this.push(String(msgid), touser, createTime).catch(() => undefined));
  }

  /**
   * Pushes a receipt now (tests: a repeated push, a forged signature). Resolves with the
   * push once answered (or its tries are spent).
   */
  async push(msgid: string, touser: string, createTime = Math.floor(Date.now() / 1000), opts: { forge?: boolean; status?: ReceiptStatus; tries?: number } = {}): Promise<ReceiptPush> {
    const t = this.target;
    if (!t) throw new Error("no receipt target configured");
    const status = opts.status ?? this.outcomes.get(touser) ?? ReceiptStatus.success;
    const xml =
      `<xml><ToUserName><![CDATA[gh_simulator]]></ToUserName><FromUserName><![CDATA[${touser}]]></FromUserName>` +
      `<CreateTime>${createTime}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>` +
      `<MsgID>${msgid}</MsgID><Status><![CDATA[${status}]]></Status></xml>`;
    const p: ReceiptPush = { msgid, touser, status, createTime, mode: t.encodingAesKey ? "aes" : "plain", answers: [], body: "", forged: opts.forge ?? false };
    this.pushes.push(p);
    const tries = opts.tries ?? 4;
    for (let i = 0; i < tries; i++) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = randomBytes(5).readUInt32BE(0).toString();
      const token = p.forged ? `${t.token}-forged` : t.token;
      const q = new URLSearchParams({ signature: sha1Signature([token, timestamp, nonce]), timestamp, nonce, openid: touser });
      let body = xml;
      if (t.encodingAesKey) {
        const encrypt = encryptMessage(xml, aesKeyFrom(t.encodingAesKey), this.appId);
        q.set("encrypt_type", "aes");
        q.set("msg_signature", sha1Signature([token, timestamp, nonce, encrypt]));
        body = `<xml><ToUserName><![CDATA[gh_simulator]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`;
      }
      try {
        const res = await fetch(`${t.url}?${q}`, { method: "POST", headers: { "content-type": "text/xml" }, body, signal: AbortSignal.timeout(5000) });
        p.answers.push(res.status);
        p.body = await res.text();
        if (res.status === 200) break;
      } catch {
        p.answers.push(0);
      }
    }
    return p;
  }
}
