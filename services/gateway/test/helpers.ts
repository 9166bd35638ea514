// Shared set-up for the gateway tests (not a test file: tap includes only *.test.ts).
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "@notify/nats-server";
import { ensureTopology, type Topology } from "@notify/nats";
import { buildApp, type GatewayApp, type GatewaySettings } from "@notify/gateway";
import type { Logger } from "@notify/log";

export const API_KEY = "test-key-5f1c0b9e2a7d4c36";
export const AUTH = { authorization: `Bearer ${API_KEY}` } as const;

export interface Nats {
  server: NatsServer;
  nc: NatsConnection;
  topology: Topology;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** One real nats-server per test file, with the whole topology. */
export async function startNats(t: Teardown): Promise<Nats> {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const topology = await ensureTopology(nc);
  return { server, nc, topology };
}

export const settings = (over: Partial<GatewaySettings> = {}): GatewaySettings => ({
  apiKeys: [API_KEY, "second-key-9a8b7c6d5e4f"],
  auth: "on",
  rateLimitPerMinute: 100_000,
  ...over,
});

/** The real app on the file's nats-server, closed when the test ends. */
export async function appFor(t: Teardown, nats: Nats, opts: { settings?: Partial<GatewaySettings>; log?: Logger } = {}): Promise<GatewayApp> {
  const app = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings(opts.settings), ...(opts.log ? { log: opts.log } : {}) });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

/** The seed's order.paid template, as an admin would post it. */
export const paidTemplate = (over: Record<string, unknown> = {}) => ({
  event: "order.paid",
  channel: "wechat",
  template_id: "TPL_PAID_V1",
  language: "zh-CN",
  payload_schema: {
    type: "object",
    required: ["amount", "title"],
    properties: { amount: { type: "number" }, title: { type: "string" } },
  },
  data: { thing1: "{{title}}", amount2: { value: "¥{{amount}}", color: "#173177" } },
  url: "https://m.example.com/orders/{{order_id}}",
  ...over,
});
