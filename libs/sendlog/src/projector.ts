import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { Buckets, Consumers, HeaderNames, decodeJson, kvStream, kvSubjectPrefix } from "@notify/contracts";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import type { Db } from "./db.js";
import { projectBatch, truncateProjection, type KvChange } from "./project.js";

export interface ProjectorOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  db: Db;
  log: Logger;
  metrics?: Metrics;
  /** The buckets projected (default: send records, templates, locks). */
  buckets?: string[];
  /** Revisions committed per statement at most. */
  batchSize?: number;
  /**
   * Commits start at least this far apart (default: 0 on PostgreSQL, 50 ms on PGlite). Each
   * statement has a fixed cost besides its rows — on PGlite ~2.5 ms of this thread's CPU —
   * so committing whatever came during the last commit keeps the CPU busy in small batches
   * exactly when the box is loaded; spacing them lets a batch grow instead, for at most
   * this much more lag.
   */
  commitIntervalMs?: number;
  /** /readyz says not ready while more revisions than this wait in any stream. */
  maxReadyLag?: number;
  /** Consumer name prefix: one per database filled from the same buckets (default `sendlog`). */
  name?: string;
  /** Let the server remove the consumers after this long unused (an embedded projector's database may be gone for good). */
  inactiveThresholdMs?: number;
}

export interface StreamStatus {
  stream: string;
  /** Last stream sequence committed to SQL. */
  committed: number;
  /** Last sequence stored in the stream (when last asked). */
  last: number;
  lag: number;
}

export interface ProjectorStatus {
  ready: boolean;
  checks: { db: boolean; running: boolean; streams: StreamStatus[]; error?: string };
}

const PULL_EXPIRES_MS = 5000;
const ACK_WAIT_MS = 60_000;

/**
 * Keeps the SQL send log in step with the KV buckets: one durable consumer per bucket
 * stream, batches committed in one statement with the stream position they reach,
 * then acknowledged (AckAll: one ack per batch). A batch is whatever arrived while the
 * previous one committed (group commit): a lone revision is written at once, a burst in
 * batches of up to `batchSize`, and no timer adds latency. Each start re-creates the consumer at
 * the database's committed position. Projections are idempotent by KV revision, so a
 * crash between commit and ack only causes a harmless replay. Run one projector per
 * database (PROJECTOR_NAME tells databases apart): the consumer and the offsets table
 * assume one writer.
 */
export class Projector {
  private readonly loops: BucketLoop[];
  private running = false;

  constructor(private readonly opts: ProjectorOptions) {
    const buckets = opts.buckets ?? [Buckets.records, Buckets.templates, Buckets.locks];
    this.loops = buckets.map((b) => new BucketLoop(b, opts));
  }

  /** `rebuild`: empty the tables and replay every bucket from its first revision. */
  async start(opts: { rebuild?: boolean } = {}): Promise<void> {
    if (opts.rebuild) {
      await this.opts.db.transaction((tx) => truncateProjection(tx));
      this.opts.log.warn({ buckets: this.loops.map((l) => l.bucket) }, "send log: rebuilding from the buckets");
    }
    for (const l of this.loops) await l.start(opts.rebuild === true);
    this.running = true;
  }

  async status(): Promise<ProjectorStatus> {
    const db = await this.opts.db.query("SELECT 1").then(
      () => true,
      () => false,
    );
    const streams = await Promise.all(this.loops.map((l) => l.status()));
    const error = this.loops.map((l) => l.lastError).find((e) => e !== null) ?? undefined;
    const maxLag = this.opts.maxReadyLag ?? 10_000;
    const ready = db && this.running && streams.every((s) => s.lag <= maxLag);
    return { ready, checks: { db, running: this.running, streams, ...(error ? { error } : {}) } };
  }

  /** Resolves once every stream's revisions stored when called are committed. */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    const targets = await Promise.all(this.loops.map(async (l) => ({ l, last: (await l.status()).last })));
    const deadline = Date.now() + timeoutMs;
    for (const { l, last } of targets) {
      while (l.committed < last) {
        if (Date.now() > deadline) throw new Error(`projector did not catch up with ${l.stream} (committed ${l.committed} of ${last}) in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops.map((l) => l.stop()));
  }
}

class BucketLoop {
  readonly stream: string;
  readonly consumer: string;
  private readonly prefix: string;
  committed = 0;
  lastError: string | null = null;
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private buffer: JsMsg[] = [];
  /** The commit in flight (resolved when none). */
  private chain: Promise<void> = Promise.resolve();
  private committing = false;
  private kickPending = false;
  private lastCommitAt = 0;
  private stopped = false;
  private lockTtlMs = 0;

  constructor(
    readonly bucket: string,
    private readonly opts: ProjectorOptions,
  ) {
    this.stream = kvStream(bucket);
    this.consumer = Consumers.projector(bucket, opts.name);
    this.prefix = kvSubjectPrefix(bucket);
  }

  private get batchSize(): number {
    return this.opts.batchSize ?? 500;
  }

  async start(rebuild: boolean): Promise<void> {
    const { jsm, db, log } = this.opts;
    const info = await jsm.streams.info(this.stream);
    if (this.bucket === Buckets.locks) this.lockTtlMs = Math.round(info.config.max_age / 1e6);
    const rows = await db.query<{ seq: unknown }>("SELECT seq FROM projector_offsets WHERE stream = $1", [this.stream]);
    this.committed = rebuild ? 0 : Number(rows[0]?.seq ?? 0);
    // The database is the truth about what is projected, so every start re-anchors the
    // durable consumer there. Reusing it as it stood would lose revisions: a process that
    // died leaves messages delivered but unacknowledged, which come back only after the
    // ack wait, and by then the next AckAll (one ack for everything up to a sequence) has
    // acknowledged them unprocessed.
    const existing = await jsm.consumers.info(this.stream, this.consumer).catch(() => null);
    if (existing) {
      if (existing.ack_floor.stream_seq > this.committed && !rebuild) {
        log.warn({ stream: this.stream, consumer: existing.ack_floor.stream_seq, database: this.committed }, "send log: the database is behind its consumer (a new or restored database?); replaying from the database's position");
      }
      await jsm.consumers.delete(this.stream, this.consumer);
    }
    await jsm.consumers.add(this.stream, {
      durable_name: this.consumer,
      ack_policy: AckPolicy.All,
      ack_wait: ACK_WAIT_MS * 1e6,
      max_deliver: -1,
      max_ack_pending: 20_000,
      ...(this.opts.inactiveThresholdMs ? { inactive_threshold: this.opts.inactiveThresholdMs * 1e6 } : {}),
      ...(this.committed > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.committed + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    const c = await this.opts.js.consumers.get(this.stream, this.consumer);
    // Two batches pulled ahead: the next one arrives while the current one commits.
    this.messages = await c.consume({ max_messages: this.batchSize * 2, expires: PULL_EXPIRES_MS });
    this.loop = this.run(this.messages);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const msg of messages) {
      if (this.stopped) break;
      this.buffer.push(msg);
      // A full batch goes at once; anything less waits for the rest of this read (and the interval).
      if (this.buffer.length >= this.batchSize) this.next();
      else this.kick();
      // Hold at most two batches beyond the one committing (the pull keeps the rest on the server).
      while (this.buffer.length >= this.batchSize * 2 && !this.stopped) {
        this.next();
        await this.chain;
      }
    }
  }

  /**
   * Commits the buffer once the messages already received are in it (setImmediate runs
   * after the iterator has handed over everything one socket read brought) and the commit
   * interval has passed, unless a commit is in flight: then its end kicks again, with what
   * came meanwhile.
   */
  private kick(): void {
    if (this.kickPending || this.committing) return;
    this.kickPending = true;
    const wait = this.buffer.length >= this.batchSize ? 0 : this.lastCommitAt + this.commitIntervalMs - Date.now();
    const go = () => {
      this.kickPending = false;
      this.next();
    };
    if (wait > 0) setTimeout(go, wait);
    else setImmediate(go);
  }

  private get commitIntervalMs(): number {
    return this.opts.commitIntervalMs ?? (this.opts.db.kind === "pglite" ? 50 : 0);
  }

  private next(): void {
    if (this.committing || this.buffer.length === 0) return;
    const msgs = this.buffer.splice(0, this.batchSize);
    this.committing = true;
    this.lastCommitAt = Date.now();
    this.chain = this.commit(msgs).then((ok) => {
      this.committing = false;
      // Stopping and the database failing: the rest stays unacknowledged for the next run.
      if (!ok) this.buffer = [];
      // Not next() at once: PGlite runs in this thread and its commit yields only microtasks,
      // so the messages that came meanwhile are still unread on the socket — and so is
      // /readyz. kick() lets the event loop read them first, and they join the next batch.
      else this.kick();
    });
  }

  /** True once committed and acknowledged; false when given up because the loop is stopping. */
  private async commit(msgs: JsMsg[]): Promise<boolean> {
    const { db, log, metrics } = this.opts;
    const changes = msgs.map((m) => this.change(m));
    // AckAll acknowledges everything up to the highest sequence (a redelivery can arrive out of order).
    const last = msgs.reduce((a, b) => (b.seq > a.seq ? b : a));
    const seq = last.seq;
    const onInvalid = (c: KvChange, why: string) => {
      metrics?.projectorInvalid.inc({ stream: this.stream });
      log.warn({ stream: this.stream, key: c.key, revision: c.revision, why }, "send log: a value that is not its bucket's type (kept in the history only)");
    };
    for (let attempt = 0; ; attempt++) {
      try {
        // One statement: atomic on its own, the rows and the position together.
        await projectBatch(db, changes, { [this.stream]: seq }, { lockTtlMs: this.lockTtlMs, onInvalid });
        break;
      } catch (err) {
        metrics?.projectorErrors.inc({ stream: this.stream });
        this.lastError = `${this.stream}: ${(err as Error).message}`;
        log.error({ err, stream: this.stream, revisions: msgs.length }, "send log: batch failed to commit; retrying");
        // Stopping: leave the batch unacknowledged, it is redelivered to the next run.
        if (this.stopped) return false;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
    this.lastError = null;
    try {
      last.ack();
    } catch (err) {
      // The connection is closing: the batch is committed, and the next start re-anchors the
      // consumer at the database's position, so a lost ack costs nothing.
      log.warn({ err, stream: this.stream }, "send log: batch committed, ack not sent");
    }
    this.committed = Math.max(this.committed, seq);
    if (metrics) {
      const now = Date.now();
      for (const m of msgs) metrics.projectorDelay.observe({ stream: this.stream }, Math.max(0, now - m.info.timestampNanos / 1e6) / 1000);
      metrics.projectorRevisions.inc({ stream: this.stream }, msgs.length);
      metrics.projectorLag.set({ stream: this.stream }, last.info.pending);
    }
    return true;
  }

  private change(m: JsMsg): KvChange {
    const op = m.headers?.get(HeaderNames.kvOperation);
    const operation = op === "DEL" || op === "PURGE" ? op : "PUT";
    let value: unknown;
    if (operation === "PUT") {
      try {
        value = decodeJson(m.data);
      } catch {
        value = undefined;
      }
    }
    return { bucket: this.bucket, key: m.subject.slice(this.prefix.length), revision: m.seq, operation, value, at: new Date(m.info.timestampNanos / 1e6) };
  }

  async status(): Promise<StreamStatus> {
    const last = await this.opts.jsm.streams.info(this.stream).then(
      (i) => i.state.last_seq,
      () => this.committed,
    );
    const lag = Math.max(0, last - this.committed);
    this.opts.metrics?.projectorLag.set({ stream: this.stream }, lag);
    return { stream: this.stream, committed: this.committed, last, lag };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    // Stop pulling, then commit what is buffered (one try each if the database is failing);
    // anything unacknowledged is redelivered next time.
    this.stopped = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    for (;;) {
      this.next();
      await this.chain;
      if (!this.committing && this.buffer.length === 0) break;
    }
  }
}
