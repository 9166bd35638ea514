/**
 * A bare two-stage JetStream worker, no business logic: the ceiling our pipeline is
 * measured against. Same JetStream operations per notification as the design:
 *   stage 1: consume event → KV create (claim) → publish job (Nats-Msg-Id) → ack
 *   stage 2: consume job → KV put (record) → publish sent fact → ack
 * Env: NATS_URL, BENCH_STAGE (1|2), BENCH_CONCURRENCY.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream, type JsMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { Skel } from "./skeleton-topology.js";
import { now } from "./util.js";

const stage = Number(process.env.BENCH_STAGE);
const concurrency = Number(process.env.BENCH_CONCURRENCY || 64);
const nc = await connect({ servers: process.env.NATS_URL!, noAsyncTraces: true, name: `skeleton-${stage}` });
const js = jetstream(nc);
const kvm = new Kvm(js);
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Envelope {
  id: string;
  order_id: string;
}

let handle: (m: JsMsg) => Promise<void>;
let consumer;
if (stage === 1) {
  const locks = await kvm.open(Skel.locks);
  consumer = await js.consumers.get(Skel.events, Skel.stage1);
  handle = async (m) => {
    const e = JSON.parse(dec.decode(m.data)) as Envelope;
    try {
      await locks.create(`paid.${e.order_id}`, enc.encode(JSON.stringify({ event_id: e.id, at: Date.now() })));
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence)) throw err;
      m.ack(); // a duplicate: claimed already
      return;
    }
    await js.publish(Skel.jobSubject, m.data, { msgID: `job.${e.order_id}` });
    m.ack();
  };
} else {
  const records = await kvm.open(Skel.records);
  consumer = await js.consumers.get(Skel.jobs, Skel.stage2);
  handle = async (m) => {
    const e = JSON.parse(dec.decode(m.data)) as Envelope;
    await records.put(`paid.${e.order_id}`, enc.encode(JSON.stringify({ event_id: e.id, status: "success", at: Date.now() })));
    const fact = { id: e.id, key: e.order_id, done: now() };
    await js.publish(Skel.sentSubject, enc.encode(JSON.stringify(fact)), { msgID: `sent.${e.order_id}` });
    m.ack();
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
