import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { FailReason, HeaderNames, Status, Streams, decodeJson, parseTraceparent, type SendJob, type SendRecord } from "@notify/contracts";
import { Decisions, RecordStore, deadLetter, decodeJob, deleteIfPresent, type Decision } from "@notify/nats";
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
  /** The job is no longer in SENDS: an earlier delivery of this advisory finished it. */
  | "gone"
  /**
   * The job was gone from SENDS on the advisory's first delivery: nothing here removed it,
   * so the server did (nats-server can drop a max-delivered work-queue message when the
   * consumer's leader changes). Logged as an error and counted, never dropped silently.
   */
  | "orphan"
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
 *   1. read the job from SENDS by stream_seq (gone on a redelivered advisory → an earlier
 *      delivery finished: ack; gone on the first → the server dropped it: "orphan");
 *   2-4. `deadLetter` (libs/nats/src/dlq.ts, shared with the sender): copy to
 *      `notify.dlq.<channel>`, record `dead` (compare-and-set), publish `notification.dead`;
 *   5. delete the job from SENDS (work-queue streams keep it forever otherwise);
 *   6. ack.
 *
 * This is the backstop: the sender dead-letters a job itself after its last attempt, and
 * reaches the consumer's max_deliver only after a long infrastructure outage.
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
      if (msg.info.deliveryCount > 1) {
        deps.log.debug({ stream_seq: seq, consumer: advisory.consumer }, "job already gone from SENDS: an earlier delivery finished it");
        deps.onOutcome?.("gone", advisory);
        return Decisions.ack();
      }
      // The sender dead-letters a job itself before the server's limit, so this is the
      // backstop's backstop: the advisory names only a sequence, and the job that held the
      // send_id is gone. Say so loudly; the record stays as the sender left it.
      metrics.orphanAdvisoriesTotal.inc({ consumer: advisory.consumer });
      deps.log.error({ stream_seq: seq, consumer: advisory.consumer, deliveries: advisory.deliveries }, "max-delivered job dropped by the server before it could be dead-lettered: reconcile records left queued or retrying");
      deps.onOutcome?.("orphan", advisory);
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

    // Attempts are provider calls (the record counts them), not deliveries.
    const attempts = current?.record.attempts ?? 0;
    const lastError = current?.record.last_error ?? `no error recorded; ${advisory.deliveries} deliveries without an ack`;
    const r = await deadLetter({ js, jsm, records }, { job, sourceSeq: seq, attempts, lastError, reason: FailReason.maxDeliveries, traceparent, current });
    if (r.outcome === "final") {
      await deleteJob(seq);
      log.info({ status: r.status }, "record became final while dead-lettering: no dead letter");
      deps.onOutcome?.("final", advisory);
      return Decisions.ack();
    }
    await deleteJob(seq);
    if (r.outcome === "dead") {
      metrics.dlqTotal.inc({ channel: job.channel, reason: FailReason.maxDeliveries });
      metrics.sentTotal.inc({ channel: job.channel, status: Status.dead });
      log.warn({ attempts, last_error: lastError, consumer: advisory.consumer }, "max deliveries reached: job dead-lettered");
      deps.onDead?.(job, r.record);
    } else {
      log.info("advisory redelivered: job was already dead-lettered; clean-up finished");
    }
    deps.onOutcome?.(r.outcome, advisory);
    return Decisions.ack();
  };

  async function deleteJob(seq: number): Promise<void> {
    await deleteIfPresent(jsm, Streams.sends, seq);
  }
}
