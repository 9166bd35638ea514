import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { HeaderNames, Streams, Subjects, childTrace, encodeJson, sendIdFor, type EventEnvelope } from "@notify/contracts";
import { publishConfirmed } from "@notify/nats";

export interface PublishedEvent {
  id: string;
  subject: string;
  seq: number;
  duplicate: boolean;
  traceparent: string;
}

/**
 * Puts a validated envelope on `events.<event>` with `Nats-Msg-Id: <id>` (EVENTS
 * de-duplicates a re-post within its window) and a `traceparent` in the caller's trace.
 * A "duplicate" answer is checked against the stream (publishConfirmed): a client's retry
 * after a 503 must not be dropped as a duplicate of a copy the stream never stored.
 */
export async function publishEvent(js: JetStreamClient, jsm: JetStreamManager, envelope: EventEnvelope, callerTraceparent?: string): Promise<PublishedEvent> {
  const trace = childTrace(callerTraceparent);
  const h = headers();
  h.set(HeaderNames.traceparent, trace.traceparent);
  const subject = Subjects.event(envelope.event);
  const ack = await publishConfirmed(js, jsm, Streams.events, subject, encodeJson(envelope), { msgID: envelope.id, headers: h });
  return { id: envelope.id, subject, seq: ack.seq, duplicate: ack.duplicate, traceparent: trace.traceparent };
}

/** A send an accepted event leads to: where its record will be. */
export interface AnnouncedSend {
  channel: string;
  send_id: string;
  href: string;
}

/**
 * The sends to follow: one per channel this deployment sends on. A send_id is derived
 * from the business key (`sendIdFor`), so it is known before the dispatcher runs; its
 * record appears once the event is dispatched (queued, or skipped/failed with a reason),
 * and a duplicate event points at the send its business key already has.
 */
export function announcedSends(envelope: EventEnvelope, channels: readonly string[]): AnnouncedSend[] {
  return channels.map((channel) => {
    const send_id = sendIdFor({ event: envelope.event, order_id: envelope.order_id, ticket_id: envelope.ticket_id, channel });
    return { channel, send_id, href: `/notifications/sends/${send_id}` };
  });
}
