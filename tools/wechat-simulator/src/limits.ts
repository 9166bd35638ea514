import { Errcode } from "./errcodes.js";

/** WeChat counts its days in Beijing time (UTC+8, no DST). */
const BEIJING_OFFSET_MS = 8 * 3600_000;

export function beijingDay(now: number): string {
  return new Date(now + BEIJING_OFFSET_MS).toISOString().slice(0, 10);
}

/** Epoch ms of the next midnight in Beijing after `now`. */
export function nextBeijingMidnight(now: number): number {
  const day = 24 * 3600_000;
  return Math.floor((now + BEIJING_OFFSET_MS) / day) * day + day - BEIJING_OFFSET_MS;
}

/**
 * `stable_token` with `force_refresh`: 20 a day, at least 30 s apart (WeChat's documented
 * limits). Past the daily count WeChat answers 45009 like any spent daily quota; too soon
 * after the previous one it answers 45011, its per-interval "slow down" code.
 */
export class ForceRefreshLimiter {
  private day = "";
  private count = 0;
  private lastAt = -Infinity;

  constructor(
    private readonly dailyLimit: number,
    private readonly minIntervalMs: number,
  ) {}

  /** 0 and counts the refresh when allowed, else the errcode to answer. */
  take(now: number): number {
    const today = beijingDay(now);
    if (today !== this.day) {
      this.day = today;
      this.count = 0;
    }
    if (this.count >= this.dailyLimit) return Errcode.dailyQuota;
    if (now - this.lastAt < this.minIntervalMs) return Errcode.minuteQuota;
    this.count++;
    this.lastAt = now;
    return Errcode.ok;
  }

  reset(): void {
    this.day = "";
    this.count = 0;
    this.lastAt = -Infinity;
  }
}

export interface QuotaView {
  daily_limit: number;
  used: number;
  remain: number;
}

/**
 * The daily quota of `cgi-bin/message/template/send` (100,000 by default), reset at
 * midnight Beijing time. Every send WeChat takes (errcode 0) uses one; past the limit
 * WeChat answers 45009 until the reset.
 */
export class DailyQuota {
  private day = "";
  private used = 0;

  constructor(private limit: number) {}

  private roll(now: number): void {
    const today = beijingDay(now);
    if (today !== this.day) {
      this.day = today;
      this.used = 0;
    }
  }

  /** True (and counted) when the day's quota has room. */
  take(now: number): boolean {
    this.roll(now);
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  view(now: number): QuotaView {
    this.roll(now);
    return { daily_limit: this.limit, used: this.used, remain: Math.max(0, this.limit - this.used) };
  }

  /** Test and control hook: a new limit and/or today's use. */
  set(now: number, o: { dailyLimit?: number; used?: number }): QuotaView {
    this.roll(now);
    if (o.dailyLimit !== undefined) this.limit = o.dailyLimit;
    if (o.used !== undefined) this.used = o.used;
    return this.view(now);
  }

  reset(): void {
    this.day = "";
    this.used = 0;
  }
}

/**
 * The account's IP whitelist for the token endpoints (null: off, the default). WeChat
 * words the refusal `invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist`.
 */
export class IpWhitelist {
  private allowed: Set<string> | null = null;

  set(ips: readonly string[] | null): void {
    this.allowed = ips ? new Set(ips.map(v4)) : null;
  }

  list(): string[] | null {
    return this.allowed ? [...this.allowed] : null;
  }

  /** null when the caller may call, else the errmsg WeChat answers with 40164. */
  refuse(remote: string | undefined): string | null {
    if (!this.allowed) return null;
    const ip = v4(remote ?? "");
    if (this.allowed.has(ip)) return null;
    const ipv6 = ip.includes(":") ? ip : `::ffff:${ip}`;
    return `invalid ip ${ip} ipv6 ${ipv6}, not in whitelist`;
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4` (node reports IPv4 callers on a dual-stack socket this way). */
function v4(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}
