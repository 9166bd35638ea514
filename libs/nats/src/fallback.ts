import type { JetStreamClient } from "@nats-io/jetstream";
import { Status, recordFromJob, type SmsSendJob } from "@notify/contracts";
import { publishJob } from "./jobs.js";
import type { RecordStore } from "./records.js";

/**
 * Publishes a prepared fallback SMS job at most once per business key. Shared by the
 * sender (WeChat refused the traveller: 43004, 40003) and the gateway (a
 * `failed:user block` receipt). Its `queued` record is created first (create-only, under
 * the SMS send_id), so a redelivered WeChat job, a repeated receipt, a second refusal or
 * a direct SMS for the same key finds it and publishes nothing new. Only our own earlier
 * attempt (queued by this event, publish lost) is published again, under the same msg id
 * (SENDS de-duplicates it).
 */
export async function publishFallback(js: JetStreamClient, records: RecordStore, job: SmsSendJob, traceparent?: string | null): Promise<"published" | "exists"> {
  const created = await records.create(recordFromJob(job));
  let revision: number;
  if (created.written) revision = created.revision;
  else if (created.current?.record.status === Status.queued && created.current.record.event_id === job.event_id) revision = created.current.revision;
  else return "exists";
  await publishJob(js, job, { recordRevision: revision, traceparent: traceparent ?? undefined });
  return "published";
}
