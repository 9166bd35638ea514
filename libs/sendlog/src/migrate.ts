import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Db } from "./db.js";

/** db/migrations at the repository root (from src/ in development, dist/ when built). */
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../db/migrations");

export interface Migration {
  name: string;
  checksum: string;
  sql: string;
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

/** `NNNN_name.sql` files in name order; anything else in the folder is ignored. */
export function readMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

/** Any constant: every runner against the same database takes the same advisory lock. */
const LOCK_ID = 716_017;

/**
 * Applies the pending migrations in one transaction, under an advisory lock so two
 * processes starting together do not race. A file that was applied and has changed since
 * stops everything (the same files must mean the same schema everywhere): add a new file
 * instead of editing an applied one.
 */
export async function migrate(db: Db, migrations: Migration[] = readMigrations()): Promise<{ applied: string[] }> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [LOCK_ID]);
    await tx.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const done = new Map((await tx.query<{ name: string; checksum: string }>("SELECT name, checksum FROM schema_migrations")).map((r) => [r.name, r.checksum]));
    const known = new Set(migrations.map((m) => m.name));
    const unknown = [...done.keys()].filter((n) => !known.has(n));
    if (unknown.length > 0) throw new MigrationError(`the database has migrations this code does not know: ${unknown.join(", ")} (running older code against a newer schema?)`);
    const applied: string[] = [];
    for (const m of migrations) {
      const sum = done.get(m.name);
      if (sum !== undefined) {
        if (sum !== m.checksum) throw new MigrationError(`migration ${m.name} was changed after it was applied (checksum ${sum.slice(0, 12)} → ${m.checksum.slice(0, 12)}); add a new migration instead`);
        continue;
      }
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", [m.name, m.checksum]);
      applied.push(m.name);
    }
    return { applied };
  });
}
