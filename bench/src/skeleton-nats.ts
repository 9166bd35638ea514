/**
 * A bare two-stage JetStream worker, no business logic: the ceiling our pipeline is
 * measured against. BENCH_OPS picks the JetStream operations per notification:
 *   issue (default), the minimal list (one KV create in stage 1, a plain ack in stage 2):
 *     stage 1: consume event → KV create (claim) → publish job (Nats-Msg-Id) → ack
 *     stage 2: consume job → KV put (record) → publish sent fact → ack
 *   design, every operation the pipeline does per notification (docs/ARCHITECTURE.md; two more than the minimal list):
 *     stage 1: consume event → KV create (lock) → KV create (record `queued`)
 *              → publish job (Nats-Msg-Id, record revision in a header) → ack
 *     stage 2: consume job → KV update (record, compare-and-set on that revision)
 *              → publish sent fact → ack confirmed by the server (double-ack)
 *   BENCH_WECHAT_API_BASE set (nats-skeleton-http): the pipeline's operations, and stage 2 makes the
 *     WeChat call before its record write, on the client the sender uses (@notify/wechat:
 *     its undici pool and token cache), against the simulator at that address.
 * Env: NATS_URL, BENCH_STAGE (1|2), BENCH_CONCURRENCY, BENCH_OPS, BENCH_CLIENT (lean: the
 * same JsPipeline path the services use, the default, so the ceiling is not handicapped
 * by client overhead our pipeline avoids; stock: the @nats-io client's kv/js/ack calls).
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream, type JsMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, headers } from "@nats-io/transport-node";
import { JsPipeline, KvWriter } from "@notify/nats";
import { createWeChatClient } from "@notify/wechat";
import { DEFAULT_APP_ID, DEFAULT_APP_SECRET } from "@notify/wechat-simulator";
import { Skel } from "./skeleton-topology.js";
import { now } from "./util.js";

const stage = Number(process.env.BENCH_STAGE);
const concurrency = Number(process.env.BENCH_CONCURRENCY || 64);
const nc = await connect({ servers: process.env.NATS_URL!, noAsyncTraces: true, name: `skeleton-${stage}` });
const js = jetstream(nc);
const kvm = new Kvm(js);
const enc = { encode: (s: string) => Buffer.from(s, "utf8") };
const dec = new TextDecoder();

interface Envelope {
  id: string;
  order_id: string;
  recipient: { openid: string };
}

// BENCH_CLIENT=lean (default): the same lean client path the services use (JsPipeline);
// stock: the @nats-io client's own kv.create / js.publish / ack.
const lean = (process.env.BENCH_CLIENT ?? "lean") === "lean";
const designOps = process.env.BENCH_OPS === "design";
if (designOps && !lean) throw new Error("BENCH_OPS=design runs on the lean client only");
const REV = "Bench-Record-Rev";
const pipe = lean ? new JsPipeline(nc) : null;
const pub = pipe ?? js;
const ack = (m: JsMsg) => (pipe ? pipe.ack(m) : m.ack());

let handle: (m: JsMsg) => Promise<void>;
let consumer;
if (stage === 1) {
  const locks = await kvm.open(Skel.locks);
  const lockWriter = pipe ? new KvWriter(locks, pipe, Skel.locks) : null;
  const records = designOps ? new KvWriter(await kvm.open(Skel.records), pipe!, Skel.records) : null;
  consumer = await js.consumers.get(Skel.events, Skel.stage1);
  handle = async (m) => {
    const e = JSON.parse(dec.decode(m.data)) as Envelope;
    const key = `paid.${e.order_id}`;
    const claim = enc.encode(JSON.stringify({ event_id: e.id, at: Date.now() }));
    try {
      await (lockWriter ? lockWriter.create(key, claim) : locks.create(key, claim));
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence)) throw err;
      ack(m); // a duplicate: claimed already
      return;
    }
    let h;
    if (records) {
      // The dispatcher's order: the `queued` record before the job, its revision travelling with the job.
      h = headers();
      h.set(REV, String(await records.create(key, enc.encode(JSON.stringify({ event_id: e.id, status: "queued", at: Date.now() })))));
    }
    await pub.publish(Skel.jobSubject, m.data, { msgID: `job.${e.order_id}`, ...(h ? { headers: h } : {}) });
    ack(m);
  };
} else {
  const records = await kvm.open(Skel.records);
  const writer = pipe ? new KvWriter(records, pipe, Skel.records) : null;
  consumer = await js.consumers.get(Skel.jobs, Skel.stage2);
  const apiBase = process.env.BENCH_WECHAT_API_BASE;
  const wechat = apiBase
    ? createWeChatClient({ WECHAT_API_BASE: apiBase, WECHAT_APP_ID: DEFAULT_APP_ID, WECHAT_APP_SECRET: DEFAULT_APP_SECRET, WECHAT_TIMEOUT_MS: 5000 }, { connections: concurrency })
    : null;
  handle = async (m) => {
    const e = JSON.parse(dec.decode(m.data)) as Envelope;
    const key = `paid.${e.order_id}`;
    if (wechat) {
      const r = await wechat.sendTemplate({ touser: e.recipient.openid, template_id: "bench", client_msg_id: key, data: { order: { value: e.order_id } } });
      if (r.kind !== "success") throw new Error(`WeChat call failed: ${r.code}`);
    }
    const rec = enc.encode(JSON.stringify({ event_id: e.id, status: "success", at: Date.now() }));
    // The sender's compare-and-set on the revision stage 1 recorded; the minimal list: a put.
    if (designOps) await writer!.update(key, rec, Number(m.headers?.get(REV)));
    else await (writer ? writer.put(key, rec) : records.put(key, rec));
    const fact = { id: e.id, key: e.order_id, done: now() };
    await pub.publish(Skel.sentSubject, enc.encode(JSON.stringify(fact)), { msgID: `sent.${e.order_id}` });
    if (designOps) await pipe!.ackAck(m);
    else ack(m);
  };
}

// Bounded concurrency with a counter: the loop only fetches and dispatches.
const messages = await consumer.consume({ max_messages: Math.max(2, concurrency * 2) });
let inFlight = 0;
let wake: (() => void) | null = null;
process.stdout.write(`${JSON.stringify({ msg: "skeleton ready", stage })}\n`);
process.once("SIGTERM", () => void messages.close().then(() => nc.drain()).then(() => process.exit(0)));
for await (const m of messages) {
  if (inFlight >= concurrency) await new Promise<void>((r) => (wake = r));
  inFlight++;
  handle(m)
    .catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      m.nak(1000);
    })
    .finally(() => {
      inFlight--;
      const w = wake;
      wake = null;
      w?.();
    });
}
