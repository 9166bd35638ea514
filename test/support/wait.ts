import { setTimeout as sleep } from "node:timers/promises";
import type { SendRecord, Status } from "@notify/contracts";
import type { RecordStore } from "@notify/nats";

/** Polls `check` until it returns a truthy value; fails with `what` after the deadline. */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 20_000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

/** Waits until the send's record reaches `status`; returns that record. */
export async function waitForStatus(records: RecordStore, sendId: string, status: Status, timeoutMs = 10_000): Promise<SendRecord> {
  try {
    return await waitFor(async () => {
      const cur = await records.get(sendId);
      return cur?.record.status === status ? cur.record : null;
    }, `${sendId} at ${status}`, timeoutMs, 50);
  } catch {
    throw new Error(`${sendId} never reached ${status} (is ${(await records.get(sendId))?.record.status})`);
  }
}
