import { CursorError, listSends, orderSends, sendStats, type Db, type Projector, type ProjectorStatus, type SendFilter, type StatsQuery } from "@notify/sendlog";
import { HttpError, badRequest, httpError } from "../errors.js";

/** Where the gateway's SQL send log comes from (main.ts decides; tests pass their own). */
export interface SendLogDb {
  db: Db;
  /** Present when this gateway fills the database itself (embedded PGlite, `npm start`). */
  projector?: Projector | null;
}

/**
 * The operator's searches over the SQL send log. Without a database every search answers
 * 503 naming the problem; a database error is a 503 too (the KV lookups keep working).
 */
export class SendSearch {
  private source: SendLogDb | null = null;
  private problem: string;

  /**
   * `source` may still be opening (the embedded PGlite takes seconds to start): until it
   * is, the search routes answer 503 saying so, and the rest of the gateway serves.
   */
  constructor(source: SendLogDb | Promise<SendLogDb | null> | null) {
    this.problem = "the send log database is not configured (set DATABASE_URL, or SENDLOG=on for the embedded PGlite)";
    if (source instanceof Promise) {
      this.problem = "the send log database is starting: retry in a few seconds";
      source.then(
        (s) => {
          this.source = s;
          if (!s) this.problem = "the send log database is not configured (set DATABASE_URL, or SENDLOG=on for the embedded PGlite)";
        },
        (err: unknown) => {
          this.problem = `the send log database could not be opened: ${(err as Error).message}`;
        },
      );
    } else {
      this.source = source;
    }
  }

  list(filter: SendFilter, page: { limit: number; cursor?: string | undefined }) {
    return this.run((db) => listSends(db, filter, page));
  }

  order(orderId: string, limit: number) {
    return this.run((db) => orderSends(db, orderId, limit));
  }

  stats(q: StatsQuery) {
    return this.run((db) => sendStats(db, q));
  }

  /** For /readyz: the database answers, and (embedded) the projector's lag. */
  async ready(): Promise<{ db: boolean | "off"; problem?: string; projector?: ProjectorStatus["checks"] }> {
    if (!this.source) return this.problem.includes("not configured") ? { db: "off" } : { db: false, problem: this.problem };
    if (this.source.projector) {
      const s = await this.source.projector.status();
      return { db: s.checks.db, projector: s.checks };
    }
    return { db: await this.source.db.query("SELECT 1").then(() => true, () => false) };
  }

  private async run<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    if (!this.source) throw httpError(503, this.problem);
    try {
      return await fn(this.source.db);
    } catch (err) {
      if (err instanceof CursorError) throw badRequest(err.message, { field: "cursor" });
      if (err instanceof HttpError) throw err;
      throw httpError(503, `the send log database is unavailable (${this.source.db.kind}): retry later`, undefined, { cause: err });
    }
  }
}
