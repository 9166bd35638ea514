import { JetStreamApiCodes, JetStreamApiError, PubHeaders, type JetStreamClient, type JetStreamPublishOptions, type JsMsg, type PubAck } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Payload, type Subscription } from "@nats-io/transport-node";
import { Deadlines, TimeoutError } from "@notify/contracts";
import { isWrongLastSequence } from "./errors.js";

/** A create-only write lost: 10071, or 10164 on servers that cannot tell the last sequence. */
function isCreateConflict(err: unknown): boolean {
  return isWrongLastSequence(err) || (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

// A JetStream answer that does not arrive within the pipeline's time-out rejects with the
// shared TimeoutError (re-exported here for the pipeline's callers).
export { TimeoutError };

/** No stream listens on the subject (the server answered "no responders"). */
export class NoStreamError extends Error {
  override name = "NoStreamError";
  constructor(
    readonly subject: string,
    opts?: ErrorOptions,
  ) {
    super(`no stream listens on ${subject}`, opts);
  }
}

/** The pipeline was closed before the answer arrived. */
export class PipelineClosedError extends Error {
  override name = "PipelineClosedError";
}

/** The subset of JetStreamClient the hot paths use: publish with a PubAck. */
export type JsPublisher = Pick<JetStreamClient, "publish">;

interface Pending {
  resolve: (m: Msg) => void;
  reject: (err: Error) => void;
  deadline: number;
  subject: string;
}

export interface JsPipelineOptions {
  /** How long to wait for a PubAck or an ack confirmation (default 5000, the JetStream client's). */
  timeoutMs?: number;
  /** Publishes with options this pipeline does not handle go through this client instead. */
  fallback?: JetStreamClient;
}

/** The client's own names for the publish headers this pipeline writes in wire form. */
const H = {
  msgId: PubHeaders.MsgIdHdr,
  expectedStream: PubHeaders.ExpectedStreamHdr,
  expectedLastMsgId: PubHeaders.ExpectedLastMsgIdHdr,
  expectedLastSeq: PubHeaders.ExpectedLastSeqHdr,
  expectedLastSubjectSeq: PubHeaders.ExpectedLastSubjectSequenceHdr,
} as const;

const ACK = new TextEncoder().encode("+ACK");
const dec = new TextDecoder();
const SUPPORTED = new Set(["msgID", "headers", "expect"]);

/**
 * JetStream publishes, KV writes and confirmed acks, answered on one shared reply
 * subscription. Same wire protocol and server-side semantics as the @nats-io client,
 * which builds a request object, a timer and an Error per successful request
 * (@nats-io/nats-core request.js: RequestOne.cancel); here a request costs one map
 * entry, and one interval timer fires the time-outs (`Deadlines`, the shared time-out
 * helper). Used on the hot paths; `publish()` is call-compatible with
 * `JetStreamClient.publish`. It relies on nats-core internals, which is why every
 * `@nats-io/*` version is pinned exactly (root package.json, README "Dependencies").
 */
export class JsPipeline implements JsPublisher {
  private readonly prefix: string;
  private readonly sub: Subscription;
  /** In flight, by reply token (the token is the entry's id). */
  private readonly pending: Deadlines<Pending>;
  private readonly timeoutMs: number;
  private outbox: ({ token: number; subject: string; data: Uint8Array; h: WireHeaders | undefined } | JsMsg)[] = [];
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: JsPipelineOptions = {},
  ) {
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.pending = new Deadlines<Pending>(this.timeoutMs, Math.max(10, Math.min(250, this.timeoutMs / 4)), (p) =>
      p.reject(new TimeoutError(`no answer from ${p.subject} within ${this.timeoutMs} ms`)),
    );
    this.prefix = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, m) => (err ? undefined : this.onReply(m)) });
  }

  /** In flight right now (for tests and gauges). */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Publishes to a stream and resolves with its PubAck; API errors reject as JetStreamApiError. */
  async publish(subject: string, payload?: Payload, options?: Partial<JetStreamPublishOptions>): Promise<PubAck> {
    if (options) {
      for (const k in options) {
        if (SUPPORTED.has(k) || options[k as keyof typeof options] === undefined) continue;
        if (this.o.fallback) return this.o.fallback.publish(subject, payload, options);
        throw new Error(`JsPipeline.publish: option ${k} is not supported (give a fallback client)`);
      }
    }
    const h = wireHeaders(options);
    const data = typeof payload === "string" ? new TextEncoder().encode(payload) : (payload ?? new Uint8Array(0));
    const m = await this.request(subject, data, h);
    if (m.headers?.code === 503) throw new NoStreamError(subject);
    const r = JSON.parse(dec.decode(m.data)) as { error?: { code: number; err_code?: number; description: string }; stream?: string; seq?: number; duplicate?: boolean; domain?: string };
    if (r.error) throw new JetStreamApiError({ code: r.error.code, err_code: r.error.err_code ?? 0, description: r.error.description });
    if (!r.stream) throw new Error(`invalid PubAck from ${subject}`);
    const ack: PubAck = { stream: r.stream, seq: r.seq ?? 0, duplicate: r.duplicate === true } as PubAck;
    if (r.domain) ack.domain = r.domain;
    return ack;
  }

  /**
   * Acks and waits for the server to confirm (JsMsg.ackAck). A message that carries no
   * reply subject (not from a consumer) falls back to the client's own ackAck.
   */
  async ackAck(msg: JsMsg): Promise<void> {
    const reply = (msg as JsMsg & { reply?: unknown }).reply;
    if (typeof reply !== "string" || !reply) {
      await msg.ackAck();
      return;
    }
    const m = await this.request(reply, ACK, undefined);
    if (m.headers?.code === 503) throw new NoStreamError(reply);
  }

  /**
   * Acks `msg` (no confirmation) in the next write, together with the requests issued in
   * the same turn of the event loop.
   */
  ack(msg: JsMsg): void {
    this.outbox.push(msg);
    this.scheduleFlush();
  }

  private request(subject: string, data: Uint8Array, h: WireHeaders | undefined): Promise<Msg> {
    if (this.closed) return Promise.reject(new PipelineClosedError("JsPipeline is closed"));
    return new Promise<Msg>((resolve, reject) => {
      const token = this.pending.add({ resolve, reject, deadline: 0, subject });
      // Requests and acks issued in one turn of the event loop are handed to the client
      // together (setImmediate), so they leave in one socket write.
      this.outbox.push({ token, subject, data, h });
      this.scheduleFlush();
    });
  }

  private send(token: number, subject: string, data: Uint8Array, h: WireHeaders | undefined): void {
    try {
      // The client only calls encode() on the headers it publishes (nats-core protocol.js publish).
      this.nc.publish(subject, data, h ? { reply: this.prefix + token, headers: h as unknown as MsgHdrs } : { reply: this.prefix + token });
    } catch (err) {
      this.pending.take(token)?.reject(err as Error);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  /**
   * Hands everything queued in this turn to the client at once, so it goes out in one
   * socket write. Without it, handlers resumed by one read reach their next publish a
   * different number of microtask hops later and the client's per-microtask flush writes
   * many small frames (the dispatcher made ~40 writes per read).
   */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const out = this.outbox;
    this.outbox = [];
    for (const o of out) {
      if ("token" in o) {
        if (this.pending.has(o.token)) this.send(o.token, o.subject, o.data, o.h);
      } else {
        try {
          o.ack();
        } catch {
          // closed connection: the ack timer redelivers
        }
      }
    }
  };

  private onReply(m: Msg): void {
    const token = Number(m.subject.slice(this.prefix.length));
    // Undefined: timed out already.
    this.pending.take(token)?.resolve(m);
  }

  /** Rejects what is still pending and unsubscribes; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.drain()) p.reject(new PipelineClosedError("JsPipeline is closed"));
    // Queued acks still go out (their work is done); queued requests were just rejected.
    this.flush();
    if (!this.nc.isClosed()) this.sub.unsubscribe();
  }
}

/**
 * Headers already in wire form. nats-core's MsgHdrs validates and canonicalises each key
 * on set() and re-encodes the whole block with TextEncoder on every publish; the headers
 * here are built once as the bytes the server reads (`NATS/1.0` then `Key: value` lines).
 */
interface WireHeaders {
  encode(): Uint8Array;
}

class Wire implements WireHeaders {
  constructor(private readonly bytes: Uint8Array) {}
  encode(): Uint8Array {
    return this.bytes;
  }
}

function wire(lines: string): WireHeaders {
  return new Wire(Buffer.from(`NATS/1.0\r\n${lines}\r\n`, "utf8"));
}

/** Every KV create sends the same header: built once. */
const CREATE_ONLY = wire(`${H.expectedLastSubjectSeq}: 0\r\n`);

function line(k: string, v: string): string {
  if (/[\r\n]/.test(v)) throw new Error(`header ${k}: values must be one line`);
  return `${k}: ${v}\r\n`;
}

function wireHeaders(o: Partial<JetStreamPublishOptions> | undefined): WireHeaders | undefined {
  if (!o) return undefined;
  const e = o.expect;
  if (!o.headers && !o.msgID && e && e.lastSubjectSequence === 0 && !e.streamName && !e.lastMsgID && e.lastSequence === undefined) return CREATE_ONLY;
  let lines = "";
  const own = new Set<string>();
  if (o.msgID) own.add(H.msgId.toLowerCase());
  if (e?.streamName) own.add(H.expectedStream.toLowerCase());
  if (e?.lastMsgID) own.add(H.expectedLastMsgId.toLowerCase());
  if (e?.lastSequence !== undefined) own.add(H.expectedLastSeq.toLowerCase());
  if (e?.lastSubjectSequence !== undefined) own.add(H.expectedLastSubjectSeq.toLowerCase());
  // The caller's headers, except those the options set (as MsgHdrs.set would replace them).
  if (o.headers) for (const [k, vs] of o.headers) if (!own.has(k.toLowerCase())) for (const v of vs) lines += line(k, v);
  if (o.msgID) lines += line(H.msgId, o.msgID);
  if (e?.streamName) lines += line(H.expectedStream, e.streamName);
  if (e?.lastMsgID) lines += line(H.expectedLastMsgId, e.lastMsgID);
  if (e?.lastSequence !== undefined) lines += line(H.expectedLastSeq, String(e.lastSequence));
  if (e?.lastSubjectSequence !== undefined) lines += line(H.expectedLastSubjectSeq, String(e.lastSubjectSequence));
  return lines ? wire(lines) : undefined;
}

/** A create that found the key taken: what holds it. */
export type CreateResult = { created: true; revision: number } | { created: false; current: KvEntry | null };

const KEY = /^[-/=.\w]+$/;

/**
 * Writes to one KV bucket through a JsPipeline: create, compare-and-set update and put
 * with the same semantics as @nats-io/kv (a create over a deleted or purged key
 * succeeds). Reads stay with the KV client. Buckets are addressed as `$KV.<bucket>.<key>`
 * (local buckets, no JetStream domain prefix).
 */
export class KvWriter {
  private readonly prefix: string;

  constructor(
    readonly kv: KV,
    private readonly js: JsPipeline,
    bucket: string,
  ) {
    this.prefix = `$KV.${bucket}.`;
  }

  private subject(key: string): string {
    if (!KEY.test(key) || key.startsWith(".") || key.endsWith(".")) throw new Error(`invalid key: ${key}`);
    return this.prefix + key;
  }

  /** Like kv.create(): throws JetStreamApiError 10071 when the key holds a value. */
  async create(key: string, value: Uint8Array): Promise<number> {
    const r = await this.createOrRead(key, value);
    if (r.created) return r.revision;
    throw new JetStreamApiError({ code: 400, err_code: 10071, description: "wrong last sequence" });
  }

  /**
   * Creates the key, or tells what holds it (one read, which a caller deciding what to
   * do next would make anyway). A deleted or purged key is created over, as kv.create does.
   */
  async createOrRead(key: string, value: Uint8Array): Promise<CreateResult> {
    const subject = this.subject(key);
    try {
      return { created: true, revision: (await this.js.publish(subject, value, { expect: { lastSubjectSequence: 0 } })).seq };
    } catch (err) {
      if (!isCreateConflict(err)) throw err;
    }
    const current = await this.kv.get(key);
    if (current && (current.operation === "DEL" || current.operation === "PURGE")) {
      try {
        return { created: true, revision: (await this.js.publish(subject, value, { expect: { lastSubjectSequence: current.revision } })).seq };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        return { created: false, current: await this.kv.get(key) };
      }
    }
    return { created: false, current };
  }

  /** Like kv.update(): a compare-and-set on the key's revision. */
  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    if (revision <= 0) throw new Error("revision must be greater than 0");
    return (await this.js.publish(this.subject(key), value, { expect: { lastSubjectSequence: revision } })).seq;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    return (await this.js.publish(this.subject(key), value)).seq;
  }
}
