// The throw-away PostgreSQL server lives in @notify/sendlog so the bench can start one too.
export { postgresBin, startPostgres, type PostgresServer } from "@notify/sendlog/postgres-server";
