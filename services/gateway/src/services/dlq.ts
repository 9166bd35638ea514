import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Headers, Status, Streams, Subjects, childTrace, recordFromJob, type SendJob, type SendRecord } from "@notify/contracts";
import { decodeJob, publishJob, readDlqMeta, type RecordStore } from "@notify/nats";
import { conflict, notFound } from "../errors.js";

export interface DlqSummary {
  seq: number;
  attempts: number;
  reason: string;
  last_error: string;
  subject: string;
  channel: string;
  received_at: string;
  send_id: string;
  event: string;
  event_id: string;
  order_id: string;
  ticket_id: string | null;
}

export interface DlqDetail extends DlqSummary {
  job: SendJob;
  record?: SendRecord;
}

export interface DlqPage {
  items: DlqSummary[];
  count: number;
  total: number;
  first_seq: number;
  last_seq: number;
  next_seq?: number;
}

export interface ReplayResult {
  seq: number;
  send_id: string;
  channel: string;
  status: "queued";
  msg_id: string;
  sends_seq: number;
  duplicate: boolean;
}

const DLQ_PREFIX = Subjects.dlq("");
/** JSSequenceNotFoundErrF: deleting a sequence that is already gone (not in JetStreamApiCodes). */
const SEQUENCE_NOT_FOUND = 10043;

/**
 * Operator actions on the `DLQ` stream, addressed by stream sequence. Replay puts the job
 * back on SENDS under a fresh message id (so the duplicate window lets it through and the
 * consumer counts deliveries from one again) after moving the record back to `queued`.
 */
export class DlqAdmin {
  constructor(
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly records: RecordStore,
  ) {}

  async list(opts: { channel?: string | undefined; fromSeq?: number | undefined; limit: number }): Promise<DlqPage> {
    const { state } = await this.jsm.streams.info(Streams.dlq);
    const subject = opts.channel ? Subjects.dlq(opts.channel) : Subjects.dlqAll;
    const items: DlqSummary[] = [];
    let seq = Math.max(opts.fromSeq ?? 1, state.first_seq, 1);
    let nextSeq: number | undefined;
    while (state.messages > 0 && seq <= state.last_seq) {
      // next_by_subj (nats-server ≥ 2.9) skips deleted sequences and other channels in one
      // request; the client's type for the non-direct get does not list it yet.
      const m = await this.jsm.streams.getMessage(Streams.dlq, { seq, next_by_subj: subject } as unknown as { seq: number });
      if (!m) break;
      if (items.length === opts.limit) {
        nextSeq = m.seq;
        break;
      }
      items.push(summarize(m).summary);
      seq = m.seq + 1;
    }
    const page: DlqPage = { items, count: items.length, total: state.messages, first_seq: state.first_seq, last_seq: state.last_seq };
    if (nextSeq !== undefined) page.next_seq = nextSeq;
    return page;
  }

  async inspect(seq: number): Promise<DlqDetail> {
    const m = await this.read(seq);
    const { summary, job } = summarize(m);
    const stored = await this.records.get(summary.send_id);
    return { ...summary, job, ...(stored ? { record: stored.record } : {}) };
  }

  async replay(seq: number): Promise<ReplayResult> {
    const m = await this.read(seq);
    const { summary, job } = summarize(m);
    const now = new Date().toISOString();
    const res = await this.records.write(
      summary.send_id,
      (current) => {
        const base: SendRecord = current ?? recordFromJob(job, Status.dead, now);
        const { reason: _r, last_error: _e, errors: _x, ...rest } = base;
        return { ...rest, status: Status.queued, attempts: 0, updated_at: now };
      },
      { replay: true },
    );
    if (!res.written) {
      const status = res.current?.record.status;
      throw conflict(
        status === Status.success
          ? `send ${summary.send_id} was delivered since it was dead-lettered: discard this entry instead`
          : `send ${summary.send_id} is ${status ?? "unknown"}: only dead, failed or skipped sends are replayed`,
        { send_id: summary.send_id, status },
      );
    }
    const msgId = `${summary.send_id}.replay.${seq}`;
    const trace = childTrace(m.header?.get(Headers.traceparent));
    const ack = await publishJob(this.js, job, { msgId, recordRevision: res.revision, traceparent: trace.traceparent });
    await this.deleteIfPresent(seq);
    return { seq, send_id: summary.send_id, channel: summary.channel, status: "queued", msg_id: msgId, sends_seq: ack.seq, duplicate: ack.duplicate };
  }

  /** Removes the entry; the record keeps its final status (dead or failed). */
  async discard(seq: number): Promise<{ channel: string }> {
    const m = await this.read(seq);
    if (!(await this.deleteIfPresent(seq))) throw notFound(`no DLQ entry at sequence ${seq}`);
    return { channel: m.subject.slice(DLQ_PREFIX.length) };
  }

  /** Messages held in the DLQ stream (for the depth gauge). */
  async depth(): Promise<number> {
    return (await this.jsm.streams.info(Streams.dlq)).state.messages;
  }

  private async read(seq: number): Promise<StoredMsg> {
    const m = await this.jsm.streams.getMessage(Streams.dlq, { seq });
    if (!m) throw notFound(`no DLQ entry at sequence ${seq}`);
    return m;
  }

  private async deleteIfPresent(seq: number): Promise<boolean> {
    try {
      return await this.jsm.streams.deleteMessage(Streams.dlq, seq);
    } catch (err) {
      // Removed meanwhile (a concurrent replay or discard): the outcome stands.
      if (err instanceof JetStreamApiError && (err.code === SEQUENCE_NOT_FOUND || err.code === JetStreamApiCodes.NoMessageFound)) return false;
      throw err;
    }
  }
}

function summarize(m: StoredMsg): { summary: DlqSummary; job: SendJob } {
  const job = decodeJob(m.data);
  const meta = readDlqMeta(m.header);
  return {
    job,
    summary: {
      seq: m.seq,
      subject: m.subject,
      channel: m.subject.startsWith(DLQ_PREFIX) ? m.subject.slice(DLQ_PREFIX.length) : job.channel,
      received_at: m.time.toISOString(),
      send_id: meta.send_id || job.send_id,
      attempts: meta.attempts,
      reason: meta.reason,
      last_error: meta.last_error,
      event: job.event,
      event_id: job.event_id,
      order_id: job.order_id,
      ticket_id: job.ticket_id ?? null,
    },
  };
}

