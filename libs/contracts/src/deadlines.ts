/** An operation got no answer within its time-out (the JetStream pipeline, a WeChat call). */
export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/** What `Deadlines` tracks: anything with a deadline it sets (performance.now() milliseconds). */
export interface Deadline {
  deadline: number;
}

/**
 * The one time-out helper: many in-flight operations that share one duration, fired by
 * one interval timer instead of a timer per operation. Entries are added in deadline
 * order (same duration, monotonic clock), so a tick stops at the first live one. An
 * entry times out at most one tick late. The map is the caller's table of what is in
 * flight: `take` ends an entry (answered) and hands it back.
 */
export class Deadlines<T extends Deadline> {
  private readonly live = new Map<number, T>();
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly timeoutMs: number,
    private readonly tickMs: number,
    private readonly onTimeout: (entry: T, id: number) => void,
  ) {}

  /** In flight. */
  get size(): number {
    return this.live.size;
  }

  /** Starts the clock for `entry` (its `deadline` is set here); returns its id. */
  add(entry: T): number {
    const id = this.nextId++;
    entry.deadline = performance.now() + this.timeoutMs;
    this.live.set(id, entry);
    if (!this.timer) {
      this.timer = setInterval(this.tick, this.tickMs);
      this.timer.unref();
    }
    return id;
  }

  has(id: number): boolean {
    return this.live.has(id);
  }

  /** Ends an entry before its deadline; undefined when it already timed out or ended. */
  take(id: number): T | undefined {
    const e = this.live.get(id);
    if (e !== undefined) this.live.delete(id);
    return e;
  }

  /** Ends every entry without firing it (close) and stops the timer; returns them. */
  drain(): T[] {
    const all = [...this.live.values()];
    this.live.clear();
    this.stop();
    return all;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private readonly tick = (): void => {
    const now = performance.now();
    for (const [id, e] of this.live) {
      if (e.deadline > now) break;
      this.live.delete(id);
      this.onTimeout(e, id);
    }
    if (this.live.size === 0) this.stop();
  };
}
