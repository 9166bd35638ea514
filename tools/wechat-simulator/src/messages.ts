/** One message the simulator accepted: what a WeChat user would receive. */
export interface SimMessage {
  /** Position in the log, from 1; stable across `since` queries. */
  seq: number;
  msgid: number;
  touser: string;
  template_id: string;
  client_msg_id: string | null;
  data: Record<string, { value: string; color?: string }>;
  url: string | null;
  miniprogram: { appid: string; pagepath?: string } | null;
  /** Epoch milliseconds with sub-millisecond precision. */
  accepted_at: number;
}

export type NewMessage = Omit<SimMessage, "seq" | "msgid" | "accepted_at">;

interface DedupEntry {
  msgid: number;
  at: number;
}

const EMPTY: readonly SimMessage[] = Object.freeze([]);

/**
 * Accepted messages with indexes by client_msg_id and openid, and WeChat's
 * de-duplication of `touser + client_msg_id` within a window.
 */
export class MessageLog {
  private all: SimMessage[] = [];
  private byClientMsgId = new Map<string, SimMessage[]>();
  private byOpenid = new Map<string, SimMessage[]>();
  // Insertion order is time order, so expired entries are pruned from the front.
  private dedup = new Map<string, DedupEntry>();
  private seq = 0;
  private nextMsgid = 2_800_000_000_000 + Math.floor(Math.random() * 1_000_000) * 1000;

  constructor(
    private readonly dedupWindowMs: number,
    private readonly maxMessages: number,
  ) {}

  get messages(): readonly SimMessage[] {
    return this.all;
  }

  get size(): number {
    return this.all.length;
  }

  /** The msgid of an earlier accepted message with the same touser and client_msg_id, if still in the window. */
  duplicateOf(touser: string, clientMsgId: string | null, now: number): number | null {
    if (!clientMsgId) return null;
    const e = this.dedup.get(dedupKey(touser, clientMsgId));
    return e && now - e.at < this.dedupWindowMs ? e.msgid : null;
  }

  record(m: NewMessage, now: number): SimMessage {
    const msg: SimMessage = { seq: ++this.seq, msgid: this.nextMsgid++, ...m, accepted_at: now };
    this.all.push(msg);
    if (msg.client_msg_id) {
      push(this.byClientMsgId, msg.client_msg_id, msg);
      const key = dedupKey(msg.touser, msg.client_msg_id);
      this.dedup.delete(key);
      this.dedup.set(key, { msgid: msg.msgid, at: now });
    }
    push(this.byOpenid, msg.touser, msg);
    this.prune(now);
    return msg;
  }

  deliveriesFor(clientMsgId: string): readonly SimMessage[] {
    return this.byClientMsgId.get(clientMsgId) ?? EMPTY;
  }

  messagesTo(openid: string): readonly SimMessage[] {
    return this.byOpenid.get(openid) ?? EMPTY;
  }

  /** Messages accepted at or after `sinceMs` (epoch ms), oldest first. */
  since(sinceMs: number): SimMessage[] {
    return this.all.slice(this.firstIndex((m) => m.accepted_at >= sinceMs));
  }

  /** Messages with a `seq` above `seq` (a cursor that survives clock questions), oldest first. */
  afterSeq(seq: number): SimMessage[] {
    return this.all.slice(this.firstIndex((m) => m.seq > seq));
  }

  /** accepted_at and seq never decrease along the log: binary search. */
  private firstIndex(match: (m: SimMessage) => boolean): number {
    let lo = 0;
    let hi = this.all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (match(this.all[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  reset(): void {
    this.all = [];
    this.byClientMsgId.clear();
    this.byOpenid.clear();
    this.dedup.clear();
  }

  private prune(now: number): void {
    for (const [k, e] of this.dedup) {
      if (now - e.at < this.dedupWindowMs) break;
      this.dedup.delete(k);
    }
    // A long benchmark must not grow without bound: drop the oldest tenth at the cap.
    if (this.all.length > this.maxMessages) {
      const drop = this.all.splice(0, Math.ceil(this.maxMessages / 10));
      for (const m of drop) {
        if (m.client_msg_id) shift(this.byClientMsgId, m.client_msg_id, m);
        shift(this.byOpenid, m.touser, m);
      }
    }
  }
}

function dedupKey(touser: string, clientMsgId: string): string {
  return `${touser}\u0000${clientMsgId}`;
}

function push(index: Map<string, SimMessage[]>, key: string, m: SimMessage): void {
  const list = index.get(key);
  if (list) list.push(m);
  else index.set(key, [m]);
}

function shift(index: Map<string, SimMessage[]>, key: string, m: SimMessage): void {
  const list = index.get(key);
  if (!list) return;
  const i = list.indexOf(m);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) index.delete(key);
}
