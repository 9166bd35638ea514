import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { Metrics } from "@notify/metrics";
import { RecordStore } from "@notify/nats";
import { TemplateCache } from "@notify/templates";
import type { GatewayMetrics } from "../metrics.js";
import { DlqAdmin } from "../services/dlq.js";
import { SendLog } from "../services/send-log.js";
import { SendSearch, type SendLogDb } from "../services/send-search.js";
import { TemplateStore } from "../services/template-store.js";

export interface Readiness {
  nats: boolean;
  buckets: boolean;
  /** Informational: the SQL send log (search routes) does not decide readiness. */
  sendlog: Awaited<ReturnType<SendSearch["ready"]>>;
}

/** What the routes use; built once per app from the NATS connection. */
export interface NotifyServices {
  templates: TemplateStore;
  sends: SendLog;
  /** Search, orders and stats over the SQL send log. */
  search: SendSearch;
  dlq: DlqAdmin;
  js: JetStreamClient;
  jsm: JetStreamManager;
  metrics: Metrics;
  gatewayMetrics: GatewayMetrics;
  ready(): Promise<Readiness>;
}

declare module "fastify" {
  interface FastifyInstance {
    notify: NotifyServices;
  }
}

export interface ServicesOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  buckets: { templates: KV; records: KV };
  metrics: Metrics;
  gatewayMetrics: GatewayMetrics;
  /** The SQL send log (or its opening); null: the search routes answer 503. */
  sendlog?: SendLogDb | Promise<SendLogDb | null> | null;
  /** Bound on each readiness probe step. */
  readyTimeoutMs?: number;
}

const within = <T>(p: Promise<T>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    p.then(
      () => resolve(true),
      () => resolve(false),
    ).finally(() => clearTimeout(timer));
  });

async function services(app: FastifyInstance, opts: ServicesOptions): Promise<void> {
  const records = new RecordStore(opts.buckets.records);
  const js = opts.jsm.jetstream();
  const timeout = opts.readyTimeoutMs ?? 2000;
  // Template lists and previews read this watched in-memory view (the dispatcher's own
  // cache), not the bucket: no KV round trip per request.
  const cache = new TemplateCache(opts.buckets.templates, { onInvalid: (key, err) => app.log.warn({ key, err }, "stored template does not compile") });
  await cache.start();
  app.addHook("onClose", () => cache.stop());
  const search = new SendSearch(opts.sendlog ?? null);
  app.decorate("notify", {
    templates: new TemplateStore(opts.buckets.templates, cache),
    sends: new SendLog(records),
    search,
    dlq: new DlqAdmin(opts.jsm, js, records),
    js,
    jsm: opts.jsm,
    metrics: opts.metrics,
    gatewayMetrics: opts.gatewayMetrics,
    async ready() {
      const nats = !opts.nc.isClosed() && (await within(opts.nc.flush(), timeout));
      const buckets = nats && (await within(Promise.all([opts.buckets.templates.status(), opts.buckets.records.status()]), timeout));
      const sendlog = await search.ready().catch(() => ({ db: false as const }));
      return { nats, buckets, sendlog };
    },
  });
}

export default fp(services, { name: "notify-services", fastify: "5.x" });
