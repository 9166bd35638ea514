import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import { Projector, migrate, openDb } from "@notify/sendlog";
import type { GatewayConfig } from "./config.js";
import type { SendLogDb } from "./services/send-search.js";

const DAY = 86_400_000;

/**
 * The gateway's SQL send log. With DATABASE_URL it only reads PostgreSQL (the projector
 * service applies the migrations and fills it). Without one it opens an embedded PGlite
 * and runs the projector in this process: PGlite is one process's file store, so the
 * process that reads it must be the one that writes it — one `npm start`, nothing else
 * to run. Its consumers are named after this host and data directory, so two such
 * gateways never share one, and the server drops them after a day unused.
 */
export async function openSendLog(config: GatewayConfig, nc: NatsConnection, log: Logger, metrics: Metrics): Promise<SendLogDb | null> {
  if (config.SENDLOG === "off") return null;
  if (config.DATABASE_URL) {
    const db = await openDb({ databaseUrl: config.DATABASE_URL });
    log.info({ db: db.where }, "send log: PostgreSQL (filled by the projector service)");
    return { db };
  }
  const dir = path.resolve(config.SENDLOG_PGLITE_DIR);
  const db = await openDb({ pgliteDir: dir });
  try {
    await migrate(db);
    const jsm = await jetstreamManager(nc, { timeout: 30_000 });
    const name = `sendlog-gw-${createHash("sha256").update(`${os.hostname()}:${dir}`).digest("hex").slice(0, 10)}`;
    const projector = new Projector({ js: jsm.jetstream(), jsm, db, log: log.child({ actor: "projector" }), metrics, name, inactiveThresholdMs: DAY });
    await projector.start();
    log.info({ db: db.where, consumer: name }, "send log: embedded PGlite, projected in this process");
    return { db, projector };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

export async function closeSendLog(s: SendLogDb | null): Promise<void> {
  await s?.projector?.stop();
  await s?.db.close();
}
