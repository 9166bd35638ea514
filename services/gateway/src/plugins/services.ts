import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { Metrics } from "@notify/metrics";
import { RecordStore } from "@notify/nats";
import type { GatewayMetrics } from "../metrics.js";
import { DlqAdmin } from "../services/dlq.js";
import { SendLog } from "../services/send-log.js";
import { TemplateStore } from "../services/template-store.js";

export interface Readiness {
  nats: boolean;
  buckets: boolean;
}

/** What the routes use; built once per app from the NATS connection. */
export interface NotifyServices {
  templates: TemplateStore;
  sends: SendLog;
  dlq: DlqAdmin;
  js: JetStreamClient;
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
  app.decorate("notify", {
    templates: new TemplateStore(opts.buckets.templates),
    sends: new SendLog(records),
    dlq: new DlqAdmin(opts.jsm, js, records),
    js,
    metrics: opts.metrics,
    gatewayMetrics: opts.gatewayMetrics,
    async ready() {
      const nats = !opts.nc.isClosed() && (await within(opts.nc.flush(), timeout));
      const buckets = nats && (await within(Promise.all([opts.buckets.templates.status(), opts.buckets.records.status()]), timeout));
      return { nats, buckets };
    },
  });
}

export default fp(services, { name: "notify-services", fastify: "5.x" });
