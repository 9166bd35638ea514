import type { KV } from "@nats-io/kv";
import type { ProviderAlert } from "@notify/alerting";
import { decodeJson, encodeJson, encodeKeyToken } from "@notify/contracts";
import { isWrongLastSequence } from "@notify/nats";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import type { Channel } from "./channels/channel.js";

export interface QuotaGovernorOptions {
  channel: Channel & Required<Pick<Channel, "quota" | "account">>;
  /** Where the lease lives (the `wechat_tokens` bucket: per-account state shared by replicas). */
  kv: KV;
  replicaId: string;
  metrics: Metrics;
  log: Logger;
  onAlert?: ProviderAlert;
  /** Alert once used / limit reaches this share (default 0.8). */
  alertShare?: number;
  /** Poll period (default 60 s); the lease lasts three periods. */
  intervalMs?: number;
  now?: () => number;
}

interface Lease {
  holder: string;
  expires_at: number;
}

/**
 * Reads the account's daily quota (`quota/get`) on one replica only: a lease in KV,
 * taken with create-if-absent, renewed and stolen-when-expired by compare-and-set on its
 * revision, so two replicas never both hold it. The holder sets the used / limit gauges
 * and raises `quota_usage` through the alerting unit at the configured share.
 */
export class QuotaGovernor {
  private readonly key: string;
  private readonly share: number;
  readonly intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly o: QuotaGovernorOptions) {
    this.key = `${encodeKeyToken(o.channel.account)}.quota_poller`;
    this.share = o.alertShare ?? 0.8;
    this.intervalMs = o.intervalMs ?? 60_000;
    this.now = o.now ?? Date.now;
  }

  /** Takes or renews the lease; true while this replica holds it. */
  async lead(): Promise<boolean> {
    const now = this.now();
    const mine = encodeJson({ holder: this.o.replicaId, expires_at: now + 3 * this.intervalMs } satisfies Lease);
    try {
      const cur = await this.o.kv.get(this.key);
      if (!cur || cur.operation !== "PUT") {
        await this.o.kv.create(this.key, mine);
        return true;
      }
      const lease = decodeJson<Lease>(cur.value);
      if (lease.holder !== this.o.replicaId && lease.expires_at > now) return false;
      await this.o.kv.update(this.key, mine, cur.revision);
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false; // another replica took it first
      throw err;
    }
  }

  /** One round: lead, read the quota, set the gauges, alert past the share. Returns the reading when this replica led. */
  async tick(): Promise<{ daily_limit: number; used: number; remain: number } | null> {
    if (!(await this.lead())) return null;
    const { channel, metrics } = this.o;
    const q = await channel.quota();
    const labels = { channel: channel.name, account: channel.account };
    const ratio = q.daily_limit > 0 ? q.used / q.daily_limit : 1;
    metrics.quotaUsed.set(labels, q.used);
    metrics.quotaLimit.set(labels, q.daily_limit);
    metrics.quotaUsage.set(labels, ratio);
    if (ratio >= this.share) {
      const pct = Math.round(ratio * 1000) / 10;
      this.o.onAlert?.("quota_usage", channel.name, `${channel.account}: ${q.used} of ${q.daily_limit} daily sends used (${pct} %, alert at ${this.share * 100} %); at 100 % WeChat answers 45009 and sends park until midnight Beijing time`, { value: ratio, threshold: this.share });
    }
    return q;
  }

  /** Polls every `intervalMs` until stop(); a failed round is logged and the next one tries again. */
  start(): void {
    const round = () => {
      this.running = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.o.log.warn({ err }, "quota poll failed"))
        .finally(() => {
          this.running = null;
          if (this.timer) this.timer = setTimeout(round, this.intervalMs).unref();
        });
    };
    this.timer = setTimeout(round, 0).unref();
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = null;
    if (t) clearTimeout(t);
    await this.running;
  }
}
