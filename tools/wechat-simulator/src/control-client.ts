import type { Fault, FaultSpec } from "./faults.js";
import type { QuotaView } from "./limits.js";
import type { SimMessage } from "./messages.js";
import type { SimStats } from "./state.js";

/** The control API's answer was not a 2xx. */
export class SimulatorControlError extends Error {
  override name = "SimulatorControlError";
  constructor(
    message: string,
    readonly status: number,
    opts?: ErrorOptions,
  ) {
    super(message, opts);
  }
}

export interface MessageQuery {
  /** Accepted at or after, epoch ms. */
  since?: number;
  /** seq above this (use `last_seq` of the previous answer as a cursor). */
  after?: number;
  touser?: string;
  client_msg_id?: string;
  limit?: number;
}

/**
 * Drives a simulator in another process over its `/_sim/*` routes (benchmarks, the
 * local run, end-to-end tests).
 */
export class SimulatorControl {
  private readonly base: string;

  constructor(url: string) {
    this.base = url.replace(/\/+$/, "");
  }

  async messages(q: MessageQuery = {}): Promise<{ count: number; last_seq: number; messages: SimMessage[] }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return this.call("GET", `messages${s ? `?${s}` : ""}`);
  }

  /** The template/send quota today; with `set`, changes the limit and/or today's use first. */
  quota(set?: { daily_limit?: number; used?: number }): Promise<QuotaView> {
    return set ? this.call("POST", "quota", set) : this.call("GET", "quota");
  }

  stats(): Promise<SimStats> {
    return this.call("GET", "stats");
  }

  async setFaults(specs: FaultSpec | FaultSpec[]): Promise<Fault[]> {
    return (await this.call<{ faults: Fault[] }>("POST", "faults", specs)).faults;
  }

  async faults(): Promise<Fault[]> {
    return (await this.call<{ faults: Fault[] }>("GET", "faults")).faults;
  }

  async clearFaults(openid?: string): Promise<number> {
    return (await this.call<{ cleared: number }>("DELETE", `faults${openid ? `?openid=${encodeURIComponent(openid)}` : ""}`)).cleared;
  }

  async expireTokens(): Promise<number> {
    return (await this.call<{ expired: number }>("POST", "expire-tokens")).expired;
  }

  async reset(): Promise<void> {
    await this.call("POST", "reset");
  }

  async health(): Promise<boolean> {
    return (await this.call<{ ok: boolean }>("GET", "health")).ok;
  }

  private async call<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}/_sim/${route}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const text = await res.text();
    if (!res.ok) throw new SimulatorControlError(`simulator ${method} /_sim/${route}: ${res.status} ${text}`, res.status);
    return JSON.parse(text) as T;
  }
}
