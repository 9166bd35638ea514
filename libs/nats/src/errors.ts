import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/** `kv.create()` / `kv.update()` refused because the key exists or moved on (code 10071). */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

export function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/** JetStream error codes the client does not name. */
export const JsErrCodes = {
  /** The stream's `max_msg_size` refused the message. */
  messageTooLarge: 10054,
  /** "no suitable peers for placement": the cluster knows fewer peers than the replicas asked for. */
  clusterNoPeers: 10005,
  /** "JetStream system temporarily unavailable": no meta leader (yet, or during an election). */
  clusterNotAvailable: 10008,
  /** "JetStream cluster not assigned to this server" / "incomplete results" while peers join. */
  clusterIncomplete: 10004,
} as const;

/**
 * A JetStream API refusal that goes away once the cluster has formed: no meta leader yet,
 * too few peers known for the replicas asked for, or a request time-out while the meta
 * group elects (a JetStream server answers nothing until then). Worth retrying with
 * back-off. "No responders" is not: no server has JetStream for this account, and
 * start-up must fail at once.
 */
export function isClusterForming(err: unknown): boolean {
  if (err instanceof JetStreamApiError) {
    return err.code === JsErrCodes.clusterNoPeers || err.code === JsErrCodes.clusterNotAvailable || err.code === JsErrCodes.clusterIncomplete;
  }
  return err instanceof Error && (err.name === "TimeoutError" || /temporarily unavailable/i.test(err.message));
}

/**
 * A publish refused for its size, and so refused again on every retry: by the client
 * (over the connection's `max_payload`) or by the stream (`max_msg_size`).
 */
export function isTooLarge(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === JsErrCodes.messageTooLarge;
  return err instanceof Error && err.name === "InvalidArgumentError" && /max_payload/.test(err.message);
}

/** An existing stream, consumer or bucket differs from the config this version wants. */
export class TopologyMismatchError extends Error {
  override name = "TopologyMismatchError";
  constructor(
    readonly differences: TopologyDifference[],
    opts?: ErrorOptions,
  ) {
    super(
      `existing NATS resources differ from the wanted config: ${differences
        .map((d) => `${d.resource}.${d.field} is ${JSON.stringify(d.have)}, want ${JSON.stringify(d.want)}`)
        .join("; ")}`,
      opts,
    );
  }
}

export interface TopologyDifference {
  resource: string;
  field: string;
  want: unknown;
  have: unknown;
}
