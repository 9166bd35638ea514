import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { MsgIds, Status, Streams, childTrace, isSmsPayload, maskPhone, recordFromJob, type SendRecord } from "@notify/contracts";
import { deleteDlqEntry, getDlqEntry, listDlq, publishJob, type DlqEntry, type DlqPage, type RecordStore } from "@notify/nats";
import { conflict, notFound } from "../errors.js";

export type DlqDetail = DlqEntry & { record?: SendRecord };

export interface ReplayResult {
  seq: number;
  send_id: string;
  channel: string;
  status: "queued";
  msg_id: string;
  sends_seq: number;
  duplicate: boolean;
}

/**
 * Operator actions on the `DLQ` stream, addressed by stream sequence; reading and
 * deleting entries is @notify/nats's (shared with the DLQ monitor). Replay puts the job
 * back on SENDS under a fresh message id (so the duplicate window lets it through and the
 * consumer counts deliveries from one again) after moving the record back to `queued`.
 */
export class DlqAdmin {
  constructor(
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly records: RecordStore,
  ) {}

  list(opts: { channel?: string | undefined; fromSeq?: number | undefined; limit: number }): Promise<DlqPage> {
    return listDlq(this.jsm, opts);
  }

  async inspect(seq: number): Promise<DlqDetail> {
    const entry = await this.read(seq);
    if (!entry.readable) return entry;
    const stored = await this.records.get(entry.send_id);
    // A phone number is shown masked, as in the send records; a replay sends the stored job.
    const p = entry.job.payload;
    const shown = isSmsPayload(p) ? { ...entry, job: { ...entry.job, payload: { ...p, phone: maskPhone(p.phone) } } } : entry;
    return stored ? { ...shown, record: stored.record } : shown;
  }

  async replay(seq: number): Promise<ReplayResult> {
    const entry = await this.read(seq);
    if (!entry.readable) throw conflict(`DLQ entry ${seq} is not a job (${entry.error}): it can only be discarded`, { seq, readable: false });
    const { job, send_id } = entry;
    const now = new Date().toISOString();
    let before: SendRecord | undefined;
    const res = await this.records.write(
      send_id,
      (current) => {
        const base: SendRecord = current ?? recordFromJob(job, Status.dead, now);
        before = base;
        // A replay is a deliberate new send: the earlier uncertain call no longer blocks a call.
        const { reason: _r, last_error: _e, errors: _x, uncertain_since: _u, ...rest } = base;
        return { ...rest, status: Status.queued, attempts: 0, updated_at: now };
      },
      { replay: true },
    );
    if (!res.written) {
      const status = res.current?.record.status;
      throw conflict(
        status === Status.success
          ? `send ${send_id} was delivered since it was dead-lettered: discard this entry instead`
          : `send ${send_id} is ${status ?? "unknown"}: only dead, failed or skipped sends are replayed`,
        { send_id, status },
      );
    }
    const msgId = MsgIds.replay(send_id, seq);
    const trace = childTrace(entry.traceparent);
    let ack;
    try {
      ack = await publishJob(this.js, job, { msgId, recordRevision: res.revision, traceparent: trace.traceparent });
    } catch (err) {
      // Not on SENDS: put the record back, so the entry can be replayed again (a record
      // left `queued` with no job would refuse every later replay).
      const back = { ...before!, updated_at: new Date().toISOString() };
      await this.records.write(send_id, () => back, { expected: { record: res.record, revision: res.revision } }).catch(() => undefined);
      throw err;
    }
    // A concurrent discard may have removed it already: the replay stands either way.
    await deleteDlqEntry(this.jsm, seq);
    return { seq, send_id, channel: entry.channel, status: "queued", msg_id: msgId, sends_seq: ack.seq, duplicate: ack.duplicate };
  }

  /** Removes the entry, readable or not; the record keeps its final status (dead or failed). */
  async discard(seq: number): Promise<{ channel: string }> {
    const entry = await this.read(seq);
    if (!(await deleteDlqEntry(this.jsm, seq))) throw notFound(`no DLQ entry at sequence ${seq}`);
    return { channel: entry.channel };
  }

  /** Messages held in the DLQ stream (for the depth gauge). */
  async depth(): Promise<number> {
    return (await this.jsm.streams.info(Streams.dlq)).state.messages;
  }

  private async read(seq: number): Promise<DlqEntry> {
    const entry = await getDlqEntry(this.jsm, seq);
    if (!entry) throw notFound(`no DLQ entry at sequence ${seq}`);
    return entry;
  }
}
