import { Type, type Static } from "typebox";
import { LogEnv, MetricsEnv, NatsEnv, SendlogEnv, loadConfig } from "@notify/config";

/** Every setting of the projector, read from the environment. */
export const ProjectorConfigSchema = Type.Object({
  ...NatsEnv,
  ...LogEnv,
  ...MetricsEnv,
  ...SendlogEnv,
  PROJECTOR_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: "KV revisions committed per SQL transaction at most" }),
  PROJECTOR_COMMIT_INTERVAL_MS: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000, description: "Commits start at least this far apart (default 0 on PostgreSQL, 50 on PGlite): fewer, larger batches for at most this much more lag" })),
  PROJECTOR_MAX_READY_LAG: Type.Integer({ minimum: 0, default: 10_000, description: "/readyz is 503 while more revisions than this wait in any bucket" }),
  PROJECTOR_NAME: Type.String({ pattern: "^[\\w-]{1,32}$", default: "sendlog", description: "Durable consumer prefix: one per database filled from the same buckets" }),
});
export type ProjectorConfig = Static<typeof ProjectorConfigSchema>;

export function loadProjectorConfig(env: NodeJS.ProcessEnv): ProjectorConfig {
  return loadConfig(ProjectorConfigSchema, env);
}
