import { FailReason, MsgIds, Subjects, decodeJson, type AlertFact } from "@notify/contracts";

/**
 * The alert rules, with no I/O: facts go in, alerts to raise come out. Time is passed
 * in, so tests drive it.
 *
 * Rule 1, consecutive failures: a *failure* is one notification that ended without
 * being delivered on a channel — a `notification.dead` fact (max deliveries, published
 * by the DLQ monitor) or a `notification.failed` fact for a provider failure (published
 * by the sender). Content problems (`schema`, `render`) say nothing about the channel
 * and are ignored. A `notification.sent` on the channel ends the streak. Each send_id
 * counts once per streak, so a fact re-published by a redelivered advisory is not a
 * second failure. More than `consecutiveFailures` in a row raises `consecutive_failures`
 * (0 means every failure alerts).
 *
 * Rule 2, DLQ depth: more than `dlqDepthThreshold` messages in the DLQ stream raises
 * `dlq_depth` (channel `all`: the stream is one queue for every channel).
 *
 * De-duplication: one alert per (kind, channel) per `dedupWindowMs`. Alerts already
 * published (by this process, another replica, or the sender's quota alert) are fed
 * back through `observeAlert`, so replicas and restarts share one window.
 */

export type AlertKind = AlertFact["kind"];

export interface AlertRulesOptions {
  /** Alert when a channel has more than this many failures in a row. */
  consecutiveFailures: number;
  /** Alert when the DLQ holds more than this many messages. */
  dlqDepthThreshold: number;
  /** At most one alert per (kind, channel) within this window. */
  dedupWindowMs: number;
  /** Distinct send_ids remembered per streak for de-duplication (bounds memory in an outage). */
  maxTrackedIds?: number;
}

/** What the rules need from a fact on `notification.>`. */
export type Observation =
  | { kind: "sent" | "failure"; channel: string; send_id: string; seq?: number | undefined }
  | { kind: "alert"; alert: AlertFact }
  | { kind: "ignored" };

export interface RaisedAlert {
  fact: AlertFact;
  /** Nats-Msg-Id of the alert fact: replicas deciding the same alert publish it once. */
  msgId: string;
}

/** The channel label of the DLQ depth alert. */
export const ALL_CHANNELS = "all";

/** Failures that are about the content, not the channel: never part of a streak. */
const CONTENT_REASONS: ReadonlySet<string> = new Set([FailReason.schema, FailReason.render]);

interface Streak {
  count: number;
  ids: Set<string>;
  /** Stream sequence (or send_id) of the last failure: names the alert it raises. */
  lastRef: string;
}

export class AlertRules {
  private readonly streaks = new Map<string, Streak>();
  private readonly lastAlertAt = new Map<string, number>();
  private readonly maxTrackedIds: number;

  constructor(readonly opts: AlertRulesOptions) {
    this.maxTrackedIds = opts.maxTrackedIds ?? 10_000;
  }

  /**
   * Feeds one fact. `quiet` only updates state (catching up on history at start-up);
   * call `evaluate()` afterwards.
   */
  observe(o: Observation, now: number, quiet = false): RaisedAlert[] {
    switch (o.kind) {
      case "ignored":
        return [];
      case "alert":
        this.observeAlert(o.alert);
        return [];
      case "sent":
        this.streaks.delete(o.channel);
        return [];
      case "failure": {
        const s = this.streaks.get(o.channel) ?? { count: 0, ids: new Set<string>(), lastRef: "" };
        this.streaks.set(o.channel, s);
        if (s.ids.has(o.send_id)) return [];
        if (s.ids.size < this.maxTrackedIds) s.ids.add(o.send_id);
        s.count++;
        s.lastRef = o.seq !== undefined ? String(o.seq) : o.send_id;
        if (quiet) return [];
        const a = this.checkStreak(o.channel, s, now);
        return a ? [a] : [];
      }
    }
  }

  /** An alert that was published: starts (or extends) the window of its (kind, channel). */
  observeAlert(a: AlertFact): void {
    const at = Date.parse(a.at);
    if (!Number.isFinite(at)) return;
    const key = dedupKey(a.kind, a.channel);
    this.lastAlertAt.set(key, Math.max(this.lastAlertAt.get(key) ?? 0, at));
  }

  /** After catching up: the streaks that are over the limit and not yet alerted. */
  evaluate(now: number): RaisedAlert[] {
    const out: RaisedAlert[] = [];
    for (const [channel, s] of this.streaks) {
      const a = this.checkStreak(channel, s, now);
      if (a) out.push(a);
    }
    return out;
  }

  /** The current DLQ depth: an alert when it is over the threshold and not suppressed. */
  dlqDepth(depth: number, now: number): RaisedAlert | null {
    const { dlqDepthThreshold: threshold, dedupWindowMs } = this.opts;
    if (depth <= threshold) return null;
    if (!this.claim("dlq_depth", ALL_CHANNELS, now)) return null;
    return {
      // One id per window: two replicas checking at about the same time store one fact.
      msgId: MsgIds.alert("dlq_depth", ALL_CHANNELS, Math.floor(now / Math.max(1, dedupWindowMs))),
      fact: {
        kind: "dlq_depth",
        channel: ALL_CHANNELS,
        message: `DLQ holds ${depth} messages (threshold ${threshold})`,
        value: depth,
        threshold,
        at: new Date(now).toISOString(),
      },
    };
  }

  /** Current streak of a channel (for tests and logs). */
  streak(channel: string): number {
    return this.streaks.get(channel)?.count ?? 0;
  }

  /** True when (kind, channel) alerted less than a window ago. */
  suppressed(kind: AlertKind, channel: string, now: number): boolean {
    const last = this.lastAlertAt.get(dedupKey(kind, channel));
    return last !== undefined && now - last < this.opts.dedupWindowMs;
  }

  private checkStreak(channel: string, s: Streak, now: number): RaisedAlert | null {
    const threshold = this.opts.consecutiveFailures;
    if (s.count <= threshold) return null;
    if (!this.claim("consecutive_failures", channel, now)) return null;
    return {
      msgId: MsgIds.alert("consecutive_failures", channel, s.lastRef),
      fact: {
        kind: "consecutive_failures",
        channel,
        message: `${s.count} consecutive failed notifications on channel ${channel} (more than ${threshold})`,
        value: s.count,
        threshold,
        at: new Date(now).toISOString(),
      },
    };
  }

  /** Takes the (kind, channel) window if it is free; the caller then raises the alert. */
  private claim(kind: AlertKind, channel: string, now: number): boolean {
    if (this.suppressed(kind, channel, now)) return false;
    this.lastAlertAt.set(dedupKey(kind, channel), now);
    return true;
  }
}

function dedupKey(kind: string, channel: string): string {
  return `${kind}\u0000${channel}`;
}

/** Reads a fact from `notification.>` into what the rules need. Malformed facts are ignored. */
export function toObservation(subject: string, data: Uint8Array, seq?: number): Observation {
  let body: Record<string, unknown>;
  try {
    const v = decodeJson<unknown>(data);
    if (!v || typeof v !== "object") return { kind: "ignored" };
    body = v as Record<string, unknown>;
  } catch {
    return { kind: "ignored" };
  }
  const channel = typeof body.channel === "string" ? body.channel : "";
  const sendId = typeof body.send_id === "string" ? body.send_id : "";
  switch (subject) {
    case Subjects.sent:
      return channel && sendId ? { kind: "sent", channel, send_id: sendId, seq } : { kind: "ignored" };
    case Subjects.dead:
      return channel && sendId ? { kind: "failure", channel, send_id: sendId, seq } : { kind: "ignored" };
    case Subjects.failed: {
      if (!channel || !sendId) return { kind: "ignored" };
      if (typeof body.reason === "string" && CONTENT_REASONS.has(body.reason)) return { kind: "ignored" };
      return { kind: "failure", channel, send_id: sendId, seq };
    }
    case Subjects.alert:
      return isAlertFact(body) ? { kind: "alert", alert: body } : { kind: "ignored" };
    default:
      return { kind: "ignored" };
  }
}

function isAlertFact(v: Record<string, unknown>): v is Record<string, unknown> & AlertFact {
  return typeof v.kind === "string" && typeof v.channel === "string" && typeof v.at === "string";
}
