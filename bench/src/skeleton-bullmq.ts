/**
 * The peer: the same bare two-stage skeleton on BullMQ + Redis, what most Node teams
 * would pick instead. Same operations per notification:
 *   stage 1: take event job → SET NX (claim) → add send job (jobId = key) → complete (ack)
 *   stage 2: take send job → SET (record) → XADD sent fact → complete (ack)
 * Env: REDIS_PORT, BENCH_STAGE (1|2), BENCH_CONCURRENCY.
 */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { PeerNames } from "./skeleton-topology.js";
import { now } from "./util.js";

interface Envelope {
  id: string;
  order_id: string;
}

const stage = Number(process.env.BENCH_STAGE);
const concurrency = Number(process.env.BENCH_CONCURRENCY || 64);
const connection = { host: "127.0.0.1", port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null };
const redis = new Redis(connection);
const sends = new Queue(PeerNames.sends, { connection });

const worker =
  stage === 1
    ? new Worker<Envelope>(
        PeerNames.events,
        async (job) => {
          const e = job.data;
          const claimed = await redis.set(`lock:paid.${e.order_id}`, JSON.stringify({ event_id: e.id, at: Date.now() }), "NX");
          if (claimed === null) return; // a duplicate: claimed already
          await sends.add("send", e, { jobId: `job.${e.order_id}`, removeOnComplete: true, removeOnFail: 1000 });
        },
        { connection, concurrency, removeOnComplete: { count: 0 } },
      )
    : new Worker<Envelope>(
        PeerNames.sends,
        async (job) => {
          const e = job.data;
          await redis.set(`rec:paid.${e.order_id}`, JSON.stringify({ event_id: e.id, status: "success", at: Date.now() }));
          await redis.xadd(PeerNames.sent, "*", "key", e.order_id, "id", e.id, "done", String(now()));
        },
        { connection, concurrency, removeOnComplete: { count: 0 } },
      );

await worker.waitUntilReady();
process.stdout.write(`${JSON.stringify({ msg: "skeleton ready", stage })}\n`);
process.once("SIGTERM", () => {
  void Promise.allSettled([worker.close(), sends.close()]).then(() => {
    redis.disconnect();
    process.exit(0);
  });
});
