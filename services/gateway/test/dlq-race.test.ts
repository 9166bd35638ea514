import t from "tap";
import { HeaderNames, Status, Streams, type SendJob, type SendRecord } from "@notify/contracts";
import { RecordStore, deleteIfPresent, publishToDlq, streamConfigs } from "@notify/nats";
import { AUTH, appFor, startNats } from "./fixtures/helpers.js";
import { paidJob } from "../../../test/support/fixtures.js";

const nats = await startNats(t);
const { jsm } = nats.topology;
const records = new RecordStore(nats.topology.buckets.records);
const js = jsm.jetstream();
let n = 0;

/** A job recorded `dead` and copied to the DLQ, as the DLQ monitor leaves it. */
async function deadLetter(): Promise<{ job: SendJob; seq: number }> {
  const order_id = `O-RACE-${++n}`;
  const job: SendJob = paidJob(order_id, `evt_race_${n}`);
  const send_id = job.send_id;
  const { payload: _p, ...rest } = job;
  const dead: SendRecord = { ...rest, status: Status.dead, attempts: 5, reason: "max_deliveries", last_error: "errcode -1", updated_at: new Date().toISOString() };
  await records.write(send_id, () => dead);
  const ack = await publishToDlq(js, job, { send_id, attempts: 5, last_error: "errcode -1", reason: "max_deliveries" });
  return { job, seq: ack.seq };
}

/** Jobs on SENDS for one send, removed afterwards so every round starts clean. */
async function takeJobs(sendId: string): Promise<number> {
  const si = await jsm.streams.info(Streams.sends);
  let count = 0;
  for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(Streams.sends, { seq });
    if (m?.header.get(HeaderNames.sendId) === sendId) {
      count++;
      await jsm.streams.deleteMessage(Streams.sends, seq);
    }
  }
  return count;
}

t.test("deleteIfPresent: of many parallel deletes of one sequence exactly one reports it", async (t) => {
  for (let round = 0; round < 10; round++) {
    const { seq } = await deadLetter();
    const results = await Promise.all(Array.from({ length: 6 }, () => deleteIfPresent(jsm, Streams.dlq, seq)));
    t.equal(results.filter(Boolean).length, 1, `round ${round}`);
  }
  t.equal(await deleteIfPresent(jsm, Streams.dlq, Number.MAX_SAFE_INTEGER), false, "a sequence past the end is simply absent");
});

t.test("replay racing discards of the same entry: 2xx or 404, never 5xx; the job re-published at most once", async (t) => {
  const app = await appFor(t, nats);
  for (let round = 0; round < 20; round++) {
    const { job, seq } = await deadLetter();
    const twoReplays = round % 2 === 1;
    const calls = [
      app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH }),
      app.inject({ method: "DELETE", url: `/notifications/dlq/${seq}`, headers: AUTH }),
      app.inject({ method: "DELETE", url: `/notifications/dlq/${seq}`, headers: AUTH }),
      ...(twoReplays ? [app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH })] : []),
    ];
    const answers = await Promise.all(calls);
    const codes = answers.map((a) => a.statusCode);
    // A second replay of the same entry may find the record already queued by the first: 409.
    const allowed = twoReplays ? [200, 204, 404, 409] : [200, 204, 404];
    t.ok(codes.every((c) => allowed.includes(c)), `round ${round}: ${codes.join(" ")}`);
    const replayed = answers.filter((a, i) => (i === 0 || i === 3) && a.statusCode === 200).length;
    t.ok(replayed <= 1, "at most one replay succeeds");
    t.equal(await takeJobs(job.send_id), replayed, "one job on SENDS per successful replay, never more");
    t.equal(answers.slice(1, 3).filter((a) => a.statusCode === 204).length <= 1, true, "at most one discard removed it");
    t.equal(await jsm.streams.getMessage(Streams.dlq, { seq }), null, "the entry is gone");
    t.equal((await records.get(job.send_id))!.record.status, replayed ? Status.queued : Status.dead);
  }
});

t.test("a replay whose publish fails puts the record back: the entry can be replayed later", async (t) => {
  const app = await appFor(t, nats);
  const { job, seq } = await deadLetter();
  const sends = streamConfigs().find((c) => c.name === Streams.sends)!;
  await jsm.streams.delete(Streams.sends);
  try {
    const failed = await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH });
    t.ok(failed.statusCode >= 500, `the bus refused: ${failed.statusCode}`);
    t.equal((await records.get(job.send_id))!.record.status, Status.dead, "the record is dead again, not stranded at queued");
    t.ok(await jsm.streams.getMessage(Streams.dlq, { seq }), "the entry stays");
  } finally {
    await jsm.streams.add({ ...sends, name: Streams.sends });
  }
  const again = await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH });
  t.equal(again.statusCode, 200);
  t.equal(await takeJobs(job.send_id), 1);
});
