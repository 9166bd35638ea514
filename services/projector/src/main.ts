import { runService } from "@notify/runtime";
import { loadProjectorConfig } from "./config.js";
import { startProjector } from "./service.js";

// The only file that reads the environment and the command line, listens and handles signals (@notify/runtime).
const USAGE = "usage: node services/projector/dist/main.js [--rebuild]";
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== "--rebuild");
if (unknown.length > 0) {
  process.stderr.write(`projector: unknown argument ${unknown.join(" ")}\n${USAGE}\n`);
  process.exit(2);
}

await runService({
  name: "projector",
  loadConfig: loadProjectorConfig,
  // A PostgreSQL URL may carry its password.
  redact: ["config.DATABASE_URL", "*.DATABASE_URL"],
  start: async ({ config, nc, log, metrics }) => {
    const s = await startProjector({
      nc,
      log,
      metrics,
      db: { databaseUrl: config.DATABASE_URL, pgliteDir: config.SENDLOG_PGLITE_DIR },
      batchSize: config.PROJECTOR_BATCH_SIZE,
      ...(config.PROJECTOR_COMMIT_INTERVAL_MS !== undefined ? { commitIntervalMs: config.PROJECTOR_COMMIT_INTERVAL_MS } : {}),
      maxReadyLag: config.PROJECTOR_MAX_READY_LAG,
      name: config.PROJECTOR_NAME,
      rebuild: args.includes("--rebuild"),
    });
    return {
      close: () => s.close(),
      ready: () => s.status(),
      refreshGauges: async () => void (await s.status()),
      readyFields: { db: s.db.where },
    };
  },
});
