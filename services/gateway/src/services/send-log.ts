import { sendIdFor, type BusinessKey, type SendRecord } from "@notify/contracts";
import type { RecordStore } from "@notify/nats";

export interface SendLogEntry {
  send_id: string;
  revision: number;
  record: SendRecord;
  history: SendRecord[];
}

/** The send log: a record and its status history (the KV history of its send_id). */
export class SendLog {
  constructor(private readonly records: RecordStore) {}

  async byId(sendId: string): Promise<SendLogEntry | null> {
    const current = await this.records.get(sendId);
    if (!current) return null;
    const history = await this.records.history(sendId);
    return { send_id: sendId, revision: current.revision, record: current.record, history };
  }

  /** send_id is derived from the business key, so the lookup needs no scan. */
  byBusinessKey(key: BusinessKey): Promise<SendLogEntry | null> {
    return this.byId(sendIdFor(key));
  }
}
