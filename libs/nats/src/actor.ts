import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "@notify/log";
import { backoffDelay } from "@notify/contracts";

/** What a handler decided; `settle()` is the one place that acks, naks or terms. */
export type Decision =
  | { kind: "ack"; /** wait for the server to confirm the ack (double-ack) */ confirm?: boolean }
  | { kind: "nak"; delayMs?: number }
  | { kind: "term" };

export const Decisions = {
  ack: (confirm = false): Decision => ({ kind: "ack", confirm }),
  nak: (delayMs?: number): Decision => (delayMs === undefined ? { kind: "nak" } : { kind: "nak", delayMs }),
  term: (): Decision => ({ kind: "term" }),
} as const;

/** How acks are sent when not by the message itself (e.g. through a JsPipeline). */
export interface AckWith {
  ack?: (msg: JsMsg) => void;
  ackAck?: (msg: JsMsg) => Promise<unknown>;
}

/** Redelivery delay after the n-th delivery threw: `base`, or the system's back-off (no jitter) capped at `max` when set. */
export function errorDelay(delivery: number, baseMs: number, maxMs?: number): number {
  return maxMs === undefined ? baseMs : backoffDelay(delivery, { baseMs, maxMs, jitter: 0 });
}

export async function settle(msg: JsMsg, d: Decision, via: AckWith = {}): Promise<void> {
  switch (d.kind) {
    case "ack":
      if (d.confirm) await (via.ackAck ? via.ackAck(msg) : msg.ackAck());
      else if (via.ack) via.ack(msg);
      else msg.ack();
      return;
    case "nak":
      msg.nak(d.delayMs);
      return;
    case "term":
      // No reason: nats-server 2.9 ignores term("reason") and redelivers the message.
      msg.term();
      return;
  }
}

/** Pull request lifetime of every actor (the idle heartbeat is half of it). */
export const PULL_EXPIRES_MS = 5000;

export interface ActorOptions {
  js: JetStreamClient;
  stream: string;
  consumer: string;
  /** Messages handled at once by this process. */
  concurrency: number;
  handle: (msg: JsMsg) => Promise<Decision>;
  log: Logger;
  /** Redelivery delay after the handler throws (an infrastructure error). */
  errorDelayMs?: number;
  /**
   * When set, the delay after a throw doubles with each delivery of the message, from
   * `errorDelayMs` up to this: a long outage is not hammered, a short one costs a second.
   */
  errorDelayMaxMs?: number;
  onSettled?: (d: Decision, msg: JsMsg) => void;
  /** How acks are sent (default by the message; a JsPipeline is cheaper and batches them). */
  ackWith?: AckWith;
}

/**
 * Pulls from a durable consumer and runs `handle` with bounded concurrency. The loop
 * only fetches and dispatches; outcomes are decisions settled in one place. `close()`
 * stops fetching, drains in-flight work and is idempotent.
 */
export class Actor {
  private messages: ConsumerMessages | null = null;
  private inFlight = 0;
  /** Confirmed acks sent and not yet answered (they no longer hold a handling slot). */
  private confirming = 0;
  /** Resolves the loop when a slot frees up (set only while the loop waits for one). */
  private slotFree: (() => void) | null = null;
  /** Resolves close() when the last in-flight message is settled. */
  private idle: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private loop: Promise<void> | null = null;
  private consumerRef: Consumer | null = null;

  constructor(private readonly opts: ActorOptions) {}

  get busy(): number {
    return this.inFlight;
  }

  get consumer(): Consumer | null {
    return this.consumerRef;
  }

  async start(): Promise<void> {
    const { js, stream, consumer, concurrency } = this.opts;
    this.consumerRef = await js.consumers.get(stream, consumer);
    // Buffer about twice the concurrency: enough to keep the handlers busy, small enough
    // that buffered messages do not sit out their ack wait. Short pulls: a pull left on a
    // consumer leader that died (cluster failover) is noticed after two missed heartbeats
    // (expires / 2 each), and a failed re-check is retried after `expires`; with the
    // client's 30 s default a failover stalled the actor for ~35 s.
    this.messages = await this.consumerRef.consume({ max_messages: Math.max(2, concurrency * 2), expires: PULL_EXPIRES_MS });
    this.loop = this.run(this.messages);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    const { concurrency } = this.opts;
    for await (const msg of messages) {
      // A counter, not a race over the in-flight promises: O(1) per message at saturation.
      if (this.inFlight >= concurrency) await new Promise<void>((resolve) => (this.slotFree = resolve));
      this.inFlight++;
      void this.process(msg).then(this.done, this.done);
    }
  }

  private readonly done = (): void => {
    this.inFlight--;
    const free = this.slotFree;
    if (free) {
      this.slotFree = null;
      free();
    }
    this.checkIdle();
  };

  private checkIdle(): void {
    if (this.inFlight === 0 && this.confirming === 0 && this.idle) this.idle();
  }

  /** Resolves when the message's slot is free: once it is settled, or once a confirmed ack is on its way. */
  private async process(msg: JsMsg): Promise<void> {
    let d: Decision;
    try {
      d = await this.opts.handle(msg);
    } catch (err) {
      this.opts.log.error({ err, subject: msg.subject, seq: msg.seq, deliveries: msg.info.deliveryCount }, "handler failed; message will be redelivered");
      d = Decisions.nak(errorDelay(msg.info.deliveryCount, this.opts.errorDelayMs ?? 1000, this.opts.errorDelayMaxMs));
    }
    const settled = settle(msg, d, this.opts.ackWith).then(
      () => this.opts.onSettled?.(d, msg),
      // The ack timer will redeliver it; handlers are idempotent.
      (err: unknown) => this.opts.log.warn({ err, seq: msg.seq }, "settle failed"),
    );
    if (d.kind === "ack" && d.confirm) {
      // The work is done: waiting for the server's confirmation (a round trip) does not
      // hold a handling slot. close() still waits for it.
      this.confirming++;
      void settled.then(() => {
        this.confirming--;
        this.checkIdle();
      });
      return;
    }
    await settled;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.messages?.close().catch(() => undefined);
      await this.loop?.catch(() => undefined);
      if (this.inFlight > 0 || this.confirming > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    })();
    return this.closing;
  }
}
