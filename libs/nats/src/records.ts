import type { KV, KvEntry } from "@nats-io/kv";
import { canTransition, decodeJson, encodeJson, type SendRecord, type Status } from "@notify/contracts";
import { isWrongLastSequence } from "./errors.js";
import type { KvWriter } from "./js-pipeline.js";

export interface StoredRecord {
  record: SendRecord;
  revision: number;
}

export type WriteResult =
  | { written: true; record: SendRecord; revision: number }
  /** The transition was refused (the record is final or further along): `current` stands. */
  | { written: false; current: StoredRecord | null };

export interface WriteOptions {
  /**
   * The revision the caller believes is current, with the record it holds. The first
   * attempt is a compare-and-set without a read; only a conflict costs a read.
   */
  expected?: StoredRecord;
  /** An operator's DLQ replay may move dead/failed back to queued. */
  replay?: boolean;
}

const MAX_CONFLICTS = 16;

/**
 * Send records in `notification_events`, keyed by send_id. Every write is a
 * compare-and-set on the KV revision and respects `canTransition`, so a record never
 * moves backwards even when two actors race (a late `queued` never hides `success`).
 */
export class RecordStore {
  /**
   * `writer` (optional) sends the writes through a JsPipeline — the hot paths of the
   * dispatcher and the sender; reads always use `kv`.
   */
  constructor(
    readonly kv: KV,
    private readonly writer?: KvWriter,
  ) {}

  async get(sendId: string): Promise<StoredRecord | null> {
    return stored(await this.kv.get(sendId));
  }

  /** Records the first status of a send; when it already exists, returns what is there. */
  async create(record: SendRecord): Promise<WriteResult> {
    if (this.writer) {
      const r = await this.writer.createOrRead(record.send_id, encodeJson(record));
      return r.created ? { written: true, record, revision: r.revision } : { written: false, current: stored(r.current) };
    }
    try {
      const revision = await this.kv.create(record.send_id, encodeJson(record));
      return { written: true, record, revision };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      return { written: false, current: await this.get(record.send_id) };
    }
  }

  /**
   * Moves a record to the status `next` returns (given the current record, or null when
   * there is none). `next` may return null to write nothing.
   */
  async write(sendId: string, next: (current: SendRecord | null) => SendRecord | null, opts: WriteOptions = {}): Promise<WriteResult> {
    let current: StoredRecord | null = opts.expected ?? null;
    let fromHint = opts.expected !== undefined;
    for (let i = 0; i < MAX_CONFLICTS; i++) {
      if (!fromHint) current = await this.get(sendId);
      fromHint = false;
      const rec = next(current?.record ?? null);
      if (!rec) return { written: false, current };
      if (!canTransition(current?.record.status as Status | undefined, rec.status, { replay: opts.replay ?? false })) {
        return { written: false, current };
      }
      try {
        const w = this.writer ?? this.kv;
        const revision = current ? await w.update(sendId, encodeJson(rec), current.revision) : await w.create(sendId, encodeJson(rec));
        return { written: true, record: rec, revision };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // Someone else wrote first: read theirs and decide again.
      }
    }
    throw new Error(`record ${sendId}: too many concurrent writers`);
  }

  /** The record's status history, oldest first (the KV history of its key). */
  async history(sendId: string): Promise<SendRecord[]> {
    const out: SendRecord[] = [];
    const it = await this.kv.history({ key: sendId });
    for await (const e of it) {
      if (e.operation === "PUT") out.push(decodeJson<SendRecord>(e.value));
    }
    return out;
  }
}

function stored(e: KvEntry | null): StoredRecord | null {
  if (!e || e.operation !== "PUT") return null;
  return { record: decodeJson<SendRecord>(e.value), revision: e.revision };
}
