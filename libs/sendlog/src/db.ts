import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";

/** The SQL surface the send log uses: the same statements run on PostgreSQL and PGlite. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Where the data lives, without credentials (for logs and /readyz). */
  readonly where: string;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DbOptions {
  /** `postgres://…`: a PostgreSQL server. Absent: PGlite with its data in `pgliteDir`. */
  databaseUrl?: string | undefined;
  /** PGlite's data directory; `memory://` keeps it in memory (tests). */
  pgliteDir?: string | undefined;
  /** Connections in the pool (PostgreSQL only). */
  poolSize?: number | undefined;
}

export const DEFAULT_PGLITE_DIR = "data/sendlog";

/** Opens PostgreSQL when a URL is given, else the embedded PGlite. */
export async function openDb(opts: DbOptions): Promise<Db> {
  if (opts.databaseUrl) return openPostgres(opts.databaseUrl, opts.poolSize ?? 10);
  return openPglite(opts.pgliteDir ?? DEFAULT_PGLITE_DIR);
}

/** `postgres://user:secret@host/db` → `postgres://host/db`: never log a password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}

async function openPostgres(url: string, max: number): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on("error", () => undefined);
  const run =
    (c: pg.Pool | pg.PoolClient) =>
    async <T>(sql: string, params?: unknown[]): Promise<T[]> =>
      (await c.query(sql, params as unknown[])).rows as T[];
  // Fail fast on a wrong URL or an unreachable server.
  await pool.query("SELECT 1");
  return {
    kind: "postgres",
    where: redactUrl(url),
    query: run(pool),
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const out = await fn({
          query: run(client),
          async exec(sql) {
            await client.query(sql);
          },
        });
        await client.query("COMMIT");
        return out;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPglite(dir: string): Promise<Db> {
  const memory = dir.startsWith("memory://");
  const dataDir = memory ? dir : path.resolve(dir);
  if (!memory) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const wrap = (c: { query: PGlite["query"]; exec: PGlite["exec"] }): Queryable => ({
    async query<T>(sql: string, params?: unknown[]) {
      return (await c.query<T>(sql, params as unknown[])).rows;
    },
    async exec(sql: string) {
      await c.exec(sql);
    },
  });
  const q = wrap(db);
  return {
    kind: "pglite",
    where: memory ? dir : `pglite:${dataDir}`,
    query: q.query,
    exec: q.exec,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
}

/** int8 arrives as a string from pg and as a number from PGlite; counts and revisions fit a double. */
export const num = (v: unknown): number => (typeof v === "number" ? v : Number(v));

/** timestamptz arrives as a Date from both drivers; null stays null. */
export const iso = (v: unknown): string | null => (v == null ? null : v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
