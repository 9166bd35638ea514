import type { KV, KvEntry } from "@nats-io/kv";
import { FailReason, Status, decodeJson, encodeJson, type LockValue, type SendRecord } from "@notify/contracts";
import { isWrongLastSequence, type CreateResult, type KvWriter, type RecordStore, type StoredRecord } from "@notify/nats";

export interface ClaimDeps {
  records: RecordStore;
  locks: KV;
  /** Claims locks through a JsPipeline (default `locks.create` + `locks.get`). */
  lockWriter?: KvWriter;
}

/**
 * Who may send a business key. `ours`: this event holds the claim (just made, held since
 * an earlier delivery, or taken over from a stale claim). `duplicate`: another event got
 * a job out for the key (or is getting one out): nothing is sent.
 */
export type Claim = { kind: "ours"; revision: number; fresh: boolean; takenOver?: string } | { kind: "duplicate"; holderEventId: string };

const MAX_TRIES = 4;

/**
 * Claims the business key `lk` for the event (create-only). When another event holds it,
 * the send record decides, since a job is only ever published after its `queued` record:
 * - no record, a `skipped` one or a failure the dispatcher recorded: the holder never got
 *   a job out (it died between claim and publish, or its deliveries ran out). The claim
 *   is stale and taken over by compare-and-set; should the holder still be alive, the
 *   record's create-only/CAS write lets exactly one of the two publish.
 * - anything else (queued, retrying, success, dead, a WeChat failure): a duplicate,
 *   except a `queued` record of this very event (its redelivery re-publishes).
 */
export async function claimKey(deps: ClaimDeps, lk: string, value: LockValue): Promise<Claim> {
  const bytes = encodeJson(value);
  for (let i = 0; i < MAX_TRIES; i++) {
    const r = await create(deps, lk, bytes);
    if (r.created) return { kind: "ours", revision: r.revision, fresh: true };
    const held = r.current;
    // Deleted or expired between the create and the read: claim again.
    if (!held || held.operation !== "PUT") continue;
    const holder = decodeJson<LockValue>(held.value);
    if (holder.event_id === value.event_id) return { kind: "ours", revision: held.revision, fresh: false };
    const rec = await deps.records.get(value.send_id);
    if (rec && !neverDispatched(rec.record)) {
      if (rec.record.event_id === value.event_id && rec.record.status === Status.queued) return { kind: "ours", revision: held.revision, fresh: false };
      return { kind: "duplicate", holderEventId: holder.event_id };
    }
    try {
      const revision = deps.lockWriter ? await deps.lockWriter.update(lk, bytes, held.revision) : await deps.locks.update(lk, bytes, held.revision);
      return { kind: "ours", revision, fresh: true, takenOver: holder.event_id };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      // Someone else moved the claim first: look again.
    }
  }
  throw new Error(`lock ${lk}: too many concurrent claimers`);
}

/** A record that proves no job went out: a skip, or a failure found before publishing. */
function neverDispatched(r: SendRecord): boolean {
  return r.status === Status.skipped || (r.status === Status.failed && r.reason !== FailReason.permanent);
}

async function create(deps: ClaimDeps, key: string, value: Uint8Array): Promise<CreateResult> {
  if (deps.lockWriter) return deps.lockWriter.createOrRead(key, value);
  try {
    return { created: true, revision: await deps.locks.create(key, value) };
  } catch (err) {
    if (!isWrongLastSequence(err)) throw err;
    return { created: false, current: await deps.locks.get(key) };
  }
}

export interface Abandon {
  /** The `failed` record to write (status, reason and last_error set). */
  failed: SendRecord;
  /** The `queued` record this event wrote, when it got that far. */
  stored?: StoredRecord | undefined;
  /** The claim's revision, when this event holds it. */
  lockRevision?: number | undefined;
}

/**
 * Gives a business key up after a failure between render and publish: records `failed`
 * and releases the claim, so a later (corrected) event for the key is sent. The claim is
 * released only when the record now says this failure; a key another event sent or holds
 * is left alone. Returns whether the failure was recorded.
 */
export async function abandonKey(deps: ClaimDeps, lk: string, a: Abandon): Promise<boolean> {
  const sendId = a.failed.send_id;
  let written: boolean;
  if (a.stored) {
    written = (await deps.records.write(sendId, () => a.failed, { expected: a.stored })).written;
  } else {
    const c = await deps.records.create(a.failed);
    written = c.written;
    // This event's own `queued` record from an earlier delivery (e.g. the template grew since).
    if (!c.written && c.current?.record.event_id === a.failed.event_id && c.current.record.status === Status.queued) {
      written = (await deps.records.write(sendId, () => a.failed, { expected: c.current })).written;
    }
  }
  if (!written) return false;
  let revision = a.lockRevision;
  if (revision === undefined) {
    const held: KvEntry | null = await deps.locks.get(lk);
    if (held?.operation === "PUT" && decodeJson<LockValue>(held.value).event_id === a.failed.event_id) revision = held.revision;
  }
  if (revision !== undefined) {
    // Only our own claim: a takeover since then has moved the revision on.
    await deps.locks.delete(lk, { previousSeq: revision }).catch((err: unknown) => {
      if (!isWrongLastSequence(err)) throw err;
    });
  }
  return true;
}
