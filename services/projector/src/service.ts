import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import { Projector, migrate, openDb, type Db, type DbOptions, type ProjectorStatus } from "@notify/sendlog";

export interface ProjectorServiceOptions {
  nc: NatsConnection;
  log: Logger;
  metrics: Metrics;
  db: DbOptions;
  batchSize?: number;
  commitIntervalMs?: number;
  maxReadyLag?: number;
  name?: string;
  rebuild?: boolean;
}

export interface ProjectorService {
  db: Db;
  projector: Projector;
  status(): Promise<ProjectorStatus>;
  close(): Promise<void>;
}

/** Opens the database, applies the migrations, then projects the buckets until closed. */
export async function startProjector(o: ProjectorServiceOptions): Promise<ProjectorService> {
  // The buckets exist (runService ensured them) before PGlite compiles its WASM, which holds the event loop a while.
  // A generous API timeout: a loaded server (or PGlite holding the event loop) must not fail the start.
  const jsm = await jetstreamManager(o.nc, { timeout: 30_000 });
  const db = await openDb(o.db);
  try {
    const { applied } = await migrate(db);
    if (applied.length > 0) o.log.info({ applied, db: db.where }, "send log: migrations applied");
    const projector = new Projector({
      js: jsm.jetstream(),
      jsm,
      db,
      log: o.log,
      metrics: o.metrics,
      ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      ...(o.commitIntervalMs !== undefined ? { commitIntervalMs: o.commitIntervalMs } : {}),
      ...(o.maxReadyLag !== undefined ? { maxReadyLag: o.maxReadyLag } : {}),
      ...(o.name ? { name: o.name } : {}),
    });
    await projector.start({ rebuild: o.rebuild === true });
    return {
      db,
      projector,
      status: () => projector.status(),
      async close() {
        await projector.stop();
        await db.close();
      },
    };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}
