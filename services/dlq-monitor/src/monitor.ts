import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import {
  FailReason,
  HeaderNames,
  MsgIds,
  Status,
  Streams,
  Subjects,
  decodeJson,
  encodeJson,
  parseTraceparent,
  recordFromJob,
  type SendJob,
  type SendRecord,
} from "@notify/contracts";
import { Decisions, RecordStore, decodeJob, deleteDlqEntry, deleteIfPresent, publishToDlq, type Decision } from "@notify/nats";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";

/** The fields of `io.nats.jetstream.advisory.v1.max_deliver` the monitor uses. */
export interface MaxDeliveriesAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
}

export function parseAdvisory(data: Uint8Array): MaxDeliveriesAdvisory | null {
  try {
    const a = decodeJson<Partial<MaxDeliveriesAdvisory>>(data);
    if (!a || typeof a.stream !== "string" || typeof a.consumer !== "string") return null;
    if (!Number.isSafeInteger(a.stream_seq) || (a.stream_seq ?? 0) < 1) return null;
    return { stream: a.stream, consumer: a.consumer, stream_seq: a.stream_seq!, deliveries: Number(a.deliveries) || 0 };
  } catch {
    return null;
  }
}

/** What handling one advisory did (for logs and tests). */
export type AdvisoryOutcome =
  /** This delivery moved the record to `dead`: copied, counted, fact published. */
  | "dead"
  /** The record was already `dead` (a redelivered advisory, or another replica won): finished the clean-up, counted nothing. */
  | "already_dead"
  /** The job is no longer in SENDS: an earlier delivery finished it. */
  | "gone"
  /** The record reached another final status first (success raced the advisory, or a permanent failure): job removed, not dead-lettered. */
  | "final"
  | "invalid";

export interface MonitorDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  records: RecordStore;
  metrics: Metrics;
  log: Logger;
  /** A job moved to `dead` by this delivery (after its fact was published). */
  onDead?: (job: SendJob, record: SendRecord) => void;
  onOutcome?: (outcome: AdvisoryOutcome, advisory: MaxDeliveriesAdvisory | null) => void;
}

/**
 * Handles one MAX_DELIVERIES advisory. Order, chosen so a crash at any point is repaired
 * by the redelivered advisory and nothing is done twice:
 *
 *   1. read the job from SENDS by stream_seq (gone → an earlier delivery finished: ack);
 *   2. copy it to `notify.dlq.<channel>` — skipped when the record is already `dead`
 *      (the copy always precedes that write); the message id
 *      `dlq.<send_id>.<attempts>.max_deliveries.<seq>` makes a repeated copy a duplicate;
 *   3. record `dead` (compare-and-set; refused when the record is final already);
 *   4. publish `notification.dead` (message id `dead.<send_id>.<seq>`);
 *   5. delete the job from SENDS (work-queue streams keep it forever otherwise);
 *   6. ack.
 *
 * The fact goes out before the delete: once the job is gone a redelivered advisory can
 * no longer learn its send_id, so a fact published after the delete could be lost.
 * Counters move only in the delivery whose compare-and-set made the transition.
 */
export function createAdvisoryHandler(deps: MonitorDeps): (msg: JsMsg) => Promise<Decision> {
  const { js, jsm, records, metrics } = deps;

  return async (msg) => {
    const advisory = parseAdvisory(msg.data);
    if (!advisory) {
      deps.log.error({ subject: msg.subject, seq: msg.seq }, "malformed MAX_DELIVERIES advisory: acked and ignored");
      deps.onOutcome?.("invalid", null);
      return Decisions.ack();
    }
    const seq = advisory.stream_seq;
    if (advisory.stream !== Streams.sends) {
      deps.log.warn({ advisory }, "advisory for another stream: ignored");
      deps.onOutcome?.("invalid", advisory);
      return Decisions.ack();
    }

    const stored = await jsm.streams.getMessage(Streams.sends, { seq });
    if (!stored) {
      deps.log.debug({ stream_seq: seq, consumer: advisory.consumer }, "job already gone from SENDS: nothing to do");
      deps.onOutcome?.("gone", advisory);
      return Decisions.ack();
    }

    let job: SendJob;
    try {
      job = decodeJob(stored.data);
      if (typeof job.send_id !== "string" || typeof job.channel !== "string") throw new TypeError("job without send_id or channel");
    } catch (err) {
      // Left in SENDS for an operator: nothing here can say where it belongs.
      deps.log.error({ err, stream_seq: seq, subject: stored.subject }, "undecodable job after max deliveries: left in SENDS");
      deps.onOutcome?.("invalid", advisory);
      return Decisions.ack();
    }

    const traceparent = stored.header?.get(HeaderNames.traceparent) || undefined;
    const trace = parseTraceparent(traceparent);
    const log = deps.log.child({ send_id: job.send_id, channel: job.channel, stream_seq: seq, ...(trace ? { trace_id: trace.traceId } : {}) });

    const current = await records.get(job.send_id);
    const status = current?.record.status;

    if (status !== undefined && status !== Status.dead && status !== Status.queued && status !== Status.retrying) {
      // success raced the advisory, or the sender already failed it (and copied it) itself.
      await deleteJob(seq);
      log.info({ status }, "record already final: job removed from SENDS without a dead letter");
      deps.onOutcome?.("final", advisory);
      return Decisions.ack();
    }

    const attempts = Math.max(current?.record.attempts ?? 0, advisory.deliveries);
    const lastError = current?.record.last_error ?? `no error recorded; ${advisory.deliveries} deliveries without an ack`;
    let dead: SendRecord;
    let transitioned = false;

    if (status === Status.dead) {
      dead = current!.record;
    } else {
      const copy = await publishToDlq(
        js,
        job,
        { send_id: job.send_id, attempts, last_error: lastError, reason: FailReason.maxDeliveries, source_seq: seq },
        traceparent,
      );
      const now = new Date().toISOString();
      const w = await records.write(
        job.send_id,
        (c) =>
          c && c.status !== Status.queued && c.status !== Status.retrying
            ? null
            : { ...(c ?? recordFromJob(job, Status.queued, now)), status: Status.dead, attempts, reason: FailReason.maxDeliveries, last_error: lastError, updated_at: now },
        current ? { expected: current } : {},
      );
      if (w.written) {
        dead = w.record;
        transitioned = true;
      } else if (w.current?.record.status === Status.dead) {
        dead = w.current.record;
      } else {
        // A success (or a permanent failure) landed between our read and our write: the
        // copy just made is wrong. Remove it, then the job.
        await deleteDlqEntry(jsm, copy.seq);
        await deleteJob(seq);
        log.info({ status: w.current?.record.status }, "record became final while dead-lettering: copy withdrawn");
        deps.onOutcome?.("final", advisory);
        return Decisions.ack();
      }
    }

    const h = headers();
    if (traceparent) h.set(HeaderNames.traceparent, traceparent);
    await js.publish(Subjects.dead, encodeJson({ ...dead, stream_seq: seq }), { msgID: MsgIds.dead(job.send_id, seq), headers: h });
    await deleteJob(seq);

    if (transitioned) {
      metrics.dlqTotal.inc({ channel: job.channel, reason: FailReason.maxDeliveries });
      metrics.sentTotal.inc({ channel: job.channel, status: Status.dead });
      log.warn({ attempts, last_error: lastError, consumer: advisory.consumer }, "max deliveries reached: job dead-lettered");
      deps.onDead?.(job, dead);
    } else {
      log.info("advisory redelivered: job was already dead-lettered; clean-up finished");
    }
    deps.onOutcome?.(transitioned ? "dead" : "already_dead", advisory);
    return Decisions.ack();
  };

  async function deleteJob(seq: number): Promise<void> {
    await deleteIfPresent(jsm, Streams.sends, seq);
  }
}
