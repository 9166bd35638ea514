import { Status, recordFromJob, type SmsSendJob } from "@notify/contracts";
import { publishJob, type RecordStore } from "@notify/nats";
import type { JetStreamClient } from "@nats-io/jetstream";

/**
 * WeChat answers that mean the traveller cannot be reached there, whatever we retry:
 * 43004 (does not follow the account), 40003 (openid not valid for this account). A
 * template with `fallback: sms` then sends its SMS instead.
 */
export const RECIPIENT_FAILURE_CODES: ReadonlySet<string> = new Set(["43004", "40003"]);

/**
 * Publishes the fallback SMS job the dispatcher prepared, at most once per business key:
 * its `queued` record is created first (create-only, under the SMS send_id), so a
 * redelivered WeChat job, a second refusal or a direct SMS for the same key finds it and
 * publishes nothing new. Only our own earlier attempt (queued by this event, publish lost)
 * is published again, under the same msg id (SENDS de-duplicates it).
 */
export async function publishFallback(js: JetStreamClient, records: RecordStore, job: SmsSendJob, traceparent: string | null | undefined): Promise<"published" | "exists"> {
  const created = await records.create(recordFromJob(job));
  let revision: number;
  if (created.written) revision = created.revision;
  else if (created.current?.record.status === Status.queued && created.current.record.event_id === job.event_id) revision = created.current.revision;
  else return "exists";
  await publishJob(js, job, { recordRevision: revision, traceparent: traceparent ?? undefined });
  return "published";
}
