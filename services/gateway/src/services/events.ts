import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { HeaderNames, Subjects, childTrace, encodeJson, type EventEnvelope } from "@notify/contracts";

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
 */
export async function publishEvent(js: JetStreamClient, envelope: EventEnvelope, callerTraceparent?: string): Promise<PublishedEvent> {
  const trace = childTrace(callerTraceparent);
  const h = headers();
  h.set(HeaderNames.traceparent, trace.traceparent);
  const subject = Subjects.event(envelope.event);
  const ack = await js.publish(subject, encodeJson(envelope), { msgID: envelope.id, headers: h });
  return { id: envelope.id, subject, seq: ack.seq, duplicate: ack.duplicate, traceparent: trace.traceparent };
}
