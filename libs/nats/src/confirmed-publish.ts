import type { JetStreamClient, JetStreamManager, PubAck } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { HeaderNames } from "@notify/contracts";

/** A publish whose PubAck was checked against the stream when it said "duplicate". */
export interface ConfirmedAck {
  seq: number;
  duplicate: boolean;
  /** Set when the first answer named a copy the stream does not hold: the id it was re-published under. */
  republishedAs?: string;
}

/** The message id of the n-th re-publish of `msgId` (after a duplicate answer with nothing behind it). */
export const republishId = (msgId: string, n: number): string => `${msgId}.republish.${n}`;

/** True when the stream holds the message `msgId` at `seq`. */
export async function streamHolds(jsm: JetStreamManager, stream: string, seq: number, msgId: string): Promise<boolean> {
  const m = await jsm.streams.getMessage(stream, { seq });
  return m !== null && m.header.get(HeaderNames.msgId) === msgId;
}

/**
 * Publishes with a message id and, when the server answers "duplicate", checks that the
 * stream holds that copy at the sequence it names; if not, publishes again under a derived
 * id (`<id>.republish.<n>`). A duplicate answer normally means a retry found the first copy
 * stored; across a partitioned leader nats-server 2.10 was seen to accept publishes it
 * never stored (docs/DECISIONS.md), and a retry of such a publish must not be dropped as a
 * duplicate of nothing. Only duplicate answers cost the extra read. The consumer must
 * de-duplicate by the payload's own id (the dispatcher does, by event id and business key),
 * since a re-published copy carries a new message id.
 */
export async function publishConfirmed(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  data: Uint8Array,
  opts: { msgID: string; headers?: MsgHdrs; timeout?: number },
): Promise<ConfirmedAck> {
  let id = opts.msgID;
  for (let n = 1; ; n++) {
    const ack: PubAck = await js.publish(subject, data, { ...opts, msgID: id });
    if (!ack.duplicate || (await streamHolds(jsm, stream, ack.seq, id))) {
      return { seq: ack.seq, duplicate: ack.duplicate, ...(id !== opts.msgID ? { republishedAs: id } : {}) };
    }
    if (n >= 3) throw new Error(`${stream}: ${id} answered as a duplicate of sequence ${ack.seq}, which does not hold it`);
    id = republishId(opts.msgID, n);
  }
}
