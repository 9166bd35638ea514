import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { NatsServer } from "@notify/nats-server";
import { RecordStore, ensureTopology, type Topology, type TopologyOptions } from "@notify/nats";
import { Subjects, encodeJson, sendIdFor, templateKey, type EventEnvelope, type SendRecord, type Status, type Template } from "@notify/contracts";
import { createLogger, type Logger } from "@notify/log";
import { createMetrics, type Metrics } from "@notify/metrics";
import { startSimulator, type Simulator, type SimulatorOptions } from "@notify/wechat-simulator";
import { startDispatcher, type DispatcherService } from "@notify/dispatcher";
import { startSender, createWeChatChannel, type SenderService } from "@notify/sender";
import { waitFor } from "./wait.js";

export interface StackOptions {
  /** In-process sender replicas (0 = none). */
  senders?: number;
  senderConcurrency?: number;
  retryBaseMs?: number;
  /** RETRY_JITTER of the senders (default 0: exact delays). */
  retryJitter?: number;
  /** Ack wait of the sender consumer (small in tests). */
  senderAckWaitMs?: number;
  wechatTimeoutMs?: number;
  dispatcher?: boolean;
  /** Shared server to reuse (a test file may run several stacks against one server). */
  server?: NatsServer;
  log?: Logger;
  /** Options of the stack's WeChat simulator (e.g. an injected clock). */
  simulator?: SimulatorOptions;
}

/** A real nats-server, the topology, a WeChat simulator, a dispatcher and senders in-process. */
export class Stack {
  readonly metrics: Metrics = createMetrics("test");
  dispatcher: DispatcherService | null = null;
  senders: SenderService[] = [];
  private constructor(
    readonly server: NatsServer,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly topo: Topology,
    readonly records: RecordStore,
    readonly sim: Simulator,
    readonly log: Logger,
    private readonly ownsServer: boolean,
    readonly opts: StackOptions,
  ) {}

  static async start(opts: StackOptions = {}): Promise<Stack> {
    const server = opts.server ?? (await NatsServer.start());
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    const topoOpts: TopologyOptions = {};
    const topo = await ensureTopology(nc, topoOpts);
    const sim = await startSimulator(opts.simulator);
    const log = opts.log ?? createLogger({ name: "stack", level: process.env.TEST_LOG_LEVEL ?? "silent" });
    const s = new Stack(server, nc, jetstream(nc), await jetstreamManager(nc), topo, new RecordStore(topo.buckets.records), sim, log, !opts.server, opts);
    if (opts.dispatcher !== false) {
      s.dispatcher = await startDispatcher({ nc, log: log.child({ actor: "dispatcher" }), metrics: s.metrics, channels: ["wechat"], concurrency: 64, topology: topoOpts });
    }
    for (let i = 0; i < (opts.senders ?? 1); i++) await s.addSender();
    return s;
  }

  async addSender(): Promise<SenderService> {
    const o = this.opts;
    const sender = await startSender({
      nc: this.nc,
      log: this.log.child({ actor: `sender-${this.senders.length + 1}` }),
      metrics: this.metrics,
      createChannel: ({ buckets }) =>
        createWeChatChannel({
          apiBase: this.sim.url,
          appId: this.sim.appId,
          appSecret: "local-simulator-secret",
          timeoutMs: o.wechatTimeoutMs ?? 1000,
          tokens: buckets.tokens,
          // As in production: msgid → send_id, so a delivery receipt finds its send.
          msgids: buckets.msgids,
          log: this.log,
          metrics: this.metrics,
        }),
      concurrency: o.senderConcurrency ?? 32,
      retry: { baseMs: o.retryBaseMs ?? 50, maxMs: 2000, jitter: o.retryJitter ?? 0 },
      quotaParkMs: 60_000,
      topology: { senderAckWaitMs: o.senderAckWaitMs ?? 2000 },
    });
    this.senders.push(sender);
    return sender;
  }

  async putTemplate(t: Template): Promise<void> {
    await this.topo.buckets.templates.put(templateKey(t.event, t.channel, t.language), encodeJson(t));
    await waitFor(() => this.dispatcher?.templates.get(t.event, t.channel, t.language)?.template.updated_at === t.updated_at, "template in the dispatcher cache");
  }

  publish(e: EventEnvelope) {
    return this.js.publish(Subjects.event(e.event), encodeJson(e), { msgID: e.id });
  }

  sendId(e: EventEnvelope, channel = "wechat"): string {
    return sendIdFor({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel });
  }

  /** Waits until the record of `e` reaches one of `statuses`. */
  async waitStatus(e: EventEnvelope, statuses: Status | Status[], timeoutMs = 20_000): Promise<SendRecord> {
    const want = Array.isArray(statuses) ? statuses : [statuses];
    return waitFor(async () => {
      const r = await this.records.get(this.sendId(e));
      return r && want.includes(r.record.status) ? r.record : null;
    }, `${this.sendId(e)} to be ${want.join("|")}`, timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.senders.map((s) => s.close()));
    await this.dispatcher?.close();
    await this.nc.close();
    await this.sim.close();
    if (this.ownsServer) await this.server.stop();
  }
}
