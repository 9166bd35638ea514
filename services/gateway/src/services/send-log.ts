import { sendIdFor, type BusinessKey, type SendRecord } from "@notify/contracts";
import type { RecordStore } from "@notify/nats";

export interface SendLogEntry {
  send_id: string;
  revision: number;
  record: SendRecord;
  history?: SendRecord[];
}

/** The send log: a record and its status history (the KV history of its send_id). */
export class SendLog {
  constructor(private readonly records: RecordStore) {}

  /**
   * The history costs an ordered consumer on the bucket; pollers that only want the
   * current status (load tests, scripts) pass `withHistory: false`.
   */
  async byId(sendId: string, opts: { withHistory?: boolean } = {}): Promise<SendLogEntry | null> {
    const current = await this.records.get(sendId);
    if (!current) return null;
    const entry: SendLogEntry = { send_id: sendId, revision: current.revision, record: current.record };
    if (opts.withHistory ?? true) entry.history = await this.records.history(sendId);
    return entry;
  }

  /** send_id is derived from the business key, so the lookup needs no scan. */
  byBusinessKey(key: BusinessKey, opts: { withHistory?: boolean } = {}): Promise<SendLogEntry | null> {
    return this.byId(sendIdFor(key), opts);
  }
}
