import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Readiness: NATS connected and the actor's consumer reachable; `checks` are shown in the body. */
  ready: () => Promise<boolean | Readiness> | boolean | Readiness;
  /** Refreshed before each scrape (e.g. consumer lag gauges). */
  beforeScrape?: () => Promise<void>;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, unknown>;
}

export interface HealthServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** `/healthz` (process up), `/readyz`, `/metrics` for the workers' Kubernetes probes and Prometheus. */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/healthz") {
        res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      } else if (path === "/readyz") {
        const r = await Promise.resolve(opts.ready()).catch(() => false);
        const ok = typeof r === "boolean" ? r : r.ready;
        const body = { status: ok ? "ready" : "not_ready", ...(typeof r === "boolean" ? {} : { checks: r.checks }) };
        res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(body));
      } else if (path === "/metrics") {
        await opts.beforeScrape?.().catch(() => undefined);
        res.writeHead(200, { "content-type": opts.registry.contentType }).end(await opts.registry.metrics());
      } else {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  return {
    port,
    url: `http://${opts.host && opts.host !== "0.0.0.0" ? opts.host : "127.0.0.1"}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
