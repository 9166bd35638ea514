import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { Streams, Subjects, encodeJson, type AlertFact } from "@notify/contracts";
import type { Logger } from "@notify/log";
import { Counter, type Metrics } from "@notify/metrics";
import type { AlertingSettings } from "./config.js";
import { AlertRules, toObservation, type RaisedAlert } from "./rules.js";
import { AlertWebhook } from "./webhook.js";
import { PROVIDER_ALERT_KINDS } from "./provider-alerts.js";

export interface AlertingOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  metrics: Metrics;
  settings: AlertingSettings;
  now?: () => number;
  /** Every alert this process raised (after publishing it). */
  onAlert?: (fact: AlertFact) => void;
}

/**
 * The I/O around `AlertRules`: reads every fact on `notification.>` through an ordered
 * consumer (no acks, no state on the server), checks the DLQ depth, and raises alerts —
 * published on `notification.alert`, logged at error, POSTed to the webhook in the
 * background. It runs beside the advisory loop and never holds it up.
 *
 * Replicas: alert ids are derived from the fact that triggered them, so replicas that
 * take the same decision publish one fact; only the replica whose publish was not a
 * duplicate logs, counts and calls the webhook.
 */
export class Alerting {
  readonly rules: AlertRules;
  /** The operator's webhook, owned (and closed once) by this unit; null when not configured. */
  readonly webhook: AlertWebhook | null;
  private readonly now: () => number;
  private readonly lookbackMs: number;
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private caughtUp = false;
  private catchUpTarget = 0;
  private resolveCaughtUp!: () => void;
  /** Resolves once the start-up replay of facts is done and alerts are live. */
  readonly ready: Promise<void> = new Promise((resolve) => (this.resolveCaughtUp = resolve));
  private depthCheck: Promise<void> | null = null;
  private depthAgain = false;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: AlertingOptions) {
    const s = o.settings;
    this.rules = new AlertRules({ consecutiveFailures: s.consecutiveFailures, dlqDepthThreshold: s.dlqAlertThreshold, dedupWindowMs: s.dedupWindowMs });
    this.now = o.now ?? Date.now;
    // The one place the look-back defaults: one de-duplication window.
    this.lookbackMs = s.lookbackMs ?? s.dedupWindowMs;
    const total = webhookCounter(o.metrics);
    this.webhook = s.webhook
      ? new AlertWebhook({ ...s.webhook, log: o.log.child({ component: "alert-webhook" }), onOutcome: (outcome) => total.inc({ outcome }) })
      : null;
  }

  async start(): Promise<void> {
    const { js, jsm } = this.o;
    const { lookbackMs, now } = this;
    const startTime = now() - lookbackMs;
    const si = await jsm.streams.info(Streams.notifications);
    let replay = lookbackMs > 0 && si.state.messages > 0;
    if (replay) {
      const last = await jsm.streams.getMessage(Streams.notifications, { seq: si.state.last_seq }).catch(() => null);
      replay = last !== null && last.time.getTime() >= startTime;
    }
    this.catchUpTarget = si.state.last_seq;
    const consumer = await js.consumers.get(
      Streams.notifications,
      replay ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(startTime).toISOString() } : { deliver_policy: DeliverPolicy.New },
    );
    this.messages = await consumer.consume({ max_messages: 512 });
    this.loop = this.run(this.messages);
    if (!replay) this.markCaughtUp();
    this.timer = setInterval(() => this.requestDlqCheck(), this.o.settings.dlqCheckIntervalMs);
    this.timer.unref();
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      try {
        await this.onFact(m);
      } catch (err) {
        this.o.log.error({ err, subject: m.subject, seq: m.seq }, "fact handling failed");
      }
    }
  }

  private async onFact(m: JsMsg): Promise<void> {
    const live = this.caughtUp;
    const observation = toObservation(m.subject, m.data, m.seq);
    const raised = this.rules.observe(observation, this.now(), !live);
    for (const r of raised) await this.raise(r);
    // A dead or failed job was just copied to the DLQ (by a sender, or the DLQ monitor):
    // check the depth now rather than at the next interval.
    if (live && (m.subject === Subjects.dead || m.subject === Subjects.failed)) this.requestDlqCheck();
    // A sender's own alert (quota, token budget) was published, logged and counted by the
    // sender; this unit adds the operator's webhook. Live facts only: a replayed one was
    // forwarded before the restart.
    if (live && observation.kind === "alert" && PROVIDER_ALERT_KINDS.has(observation.alert.kind)) this.forward(observation.alert);
    if (!this.caughtUp && (m.seq >= this.catchUpTarget || m.info.pending === 0)) this.markCaughtUp();
  }

  private markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    const pending = this.rules.evaluate(this.now());
    this.o.log.info({ raised_after_replay: pending.length }, "alerting live");
    void (async () => {
      for (const r of pending) await this.raise(r);
    })();
    this.resolveCaughtUp();
    this.requestDlqCheck();
  }

  /** Publishes, logs, counts and POSTs one alert. Never throws. */
  async raise(r: RaisedAlert): Promise<void> {
    const { fact } = r;
    let duplicate = false;
    try {
      const ack = await this.o.js.publish(Subjects.alert, encodeJson(fact), { msgID: r.msgId });
      duplicate = ack.duplicate;
    } catch (err) {
      // Still log and call the webhook: an alert matters most when the bus is unwell.
      this.o.log.warn({ err, alert_kind: fact.kind }, "alert fact could not be published");
    }
    if (duplicate) {
      this.o.log.info({ alert: fact }, "alert already raised by another replica");
      return;
    }
    this.o.metrics.alertsTotal.inc({ kind: fact.kind, channel: fact.channel });
    this.o.log.error({ alert: fact }, `ALERT ${fact.kind}: ${fact.message}`);
    this.webhook?.enqueue(fact);
    this.o.onAlert?.(fact);
  }

  /** Hands a provider's alert to the webhook (the fact itself is already on the stream). */
  private forward(fact: AlertFact): void {
    this.o.log.info({ alert_kind: fact.kind, channel: fact.channel }, "provider alert forwarded to the webhook");
    this.webhook?.enqueue(fact);
  }

  /** Schedules a DLQ depth check; concurrent requests fold into one more check. */
  requestDlqCheck(): void {
    if (this.closing) return;
    if (this.depthCheck) {
      this.depthAgain = true;
      return;
    }
    this.depthCheck = (async () => {
      do {
        this.depthAgain = false;
        await this.checkDlqDepth().catch((err: unknown) => this.o.log.warn({ err }, "DLQ depth check failed"));
      } while (this.depthAgain && !this.closing);
    })().finally(() => {
      this.depthCheck = null;
    });
  }

  /** Reads the DLQ depth, sets the gauge, alerts when it is over the threshold. */
  async checkDlqDepth(): Promise<number> {
    const si = await this.o.jsm.streams.info(Streams.dlq);
    const depth = si.state.messages;
    this.o.metrics.dlqDepth.set(depth);
    // Before the replay is done, earlier alerts are not known yet: only measure.
    if (this.caughtUp) {
      const r = this.rules.dlqDepth(depth, this.now());
      if (r) await this.raise(r);
    }
    return depth;
  }

  /** Resolves when no DLQ depth check is running. */
  async idle(): Promise<void> {
    while (this.depthCheck) await this.depthCheck;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      const steps = [
        async () => {
          await this.messages?.close();
          await this.loop;
        },
        () => this.idle(),
        // Last, so the alerts raised while stopping are still delivered (within its drain time).
        async () => this.webhook?.close(),
      ];
      for (const step of steps) {
        await step().catch((err: unknown) => this.o.log.warn({ err }, "alerting close step failed"));
      }
    })();
    return this.closing;
  }
}

const WEBHOOK_METRIC = "notifications_alert_webhook_total";

function webhookCounter(metrics: Metrics): Counter<"outcome"> {
  const existing = metrics.registry.getSingleMetric(WEBHOOK_METRIC);
  if (existing) return existing as Counter<"outcome">;
  return new Counter({
    name: WEBHOOK_METRIC,
    help: "Alert webhook deliveries by outcome (delivered, failed after every retry, dropped when the queue was full)",
    labelNames: ["outcome"] as const,
    registers: [metrics.registry],
  });
}
