import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** Epoch milliseconds with sub-millisecond precision (the simulator stamps `accepted_at` the same way). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Nearest-rank percentile of an ascending array. */
export function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(xs: readonly number[]): number {
  return pct([...xs].sort((a, b) => a - b), 50);
}

export interface LatencySummary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(latencies: number[]): LatencySummary {
  const s = [...latencies].sort((a, b) => a - b);
  return { n: s.length, p50: round(pct(s, 50), 2), p95: round(pct(s, 95), 2), p99: round(pct(s, 99), 2), max: round(s.at(-1) ?? Number.NaN, 2) };
}

export function round(v: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

const CLK_TCK = 100;

/** utime + stime of a process in seconds (Linux /proc), or NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at field 3.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in KiB (VmRSS from /proc/<pid>/status), or NaN when the process is gone. */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export interface ProcRef {
  label: string;
  pid: number;
}

/** CPU seconds the whole machine spent busy (all cores, /proc/stat), or NaN off Linux. */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Cores kept busy by the machine over `ms` (everything, not only us). */
export async function machineBusyCores(ms: number): Promise<number> {
  const b0 = machineBusySeconds();
  const t0 = performance.now();
  await sleep(ms);
  return (machineBusySeconds() - b0) / ((performance.now() - t0) / 1000);
}

/**
 * CPU seconds per labelled process between two snapshots, and how much CPU the rest of
 * the machine (other people's work on a shared box) took meanwhile.
 */
export class CpuMeter {
  private start = new Map<string, number>();
  private self0 = process.cpuUsage();
  private machine0 = 0;
  private t0 = 0;

  constructor(private readonly procs: () => ProcRef[]) {
    this.reset();
  }

  reset(): void {
    this.start.clear();
    for (const p of this.procs()) this.start.set(p.label, cpuSeconds(p.pid));
    this.self0 = process.cpuUsage();
    this.machine0 = machineBusySeconds();
    this.t0 = performance.now();
  }

  /** Cores busy with work that is not ours since the last reset (0 on a quiet machine). */
  foreignCores(): number {
    const ours = Object.values(this.read()).reduce((a, b) => a + b, 0);
    const elapsed = (performance.now() - this.t0) / 1000;
    return round(Math.max(0, (machineBusySeconds() - this.machine0 - ours) / elapsed), 2);
  }

  read(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.procs()) {
      // A process started after the snapshot counts from zero.
      const s = this.start.get(p.label) ?? 0;
      out[p.label] = round(cpuSeconds(p.pid) - s, 2);
    }
    const u = process.cpuUsage(this.self0);
    out["bench (publisher)"] = round((u.user + u.system) / 1e6, 2);
    return out;
  }
}

/** Runs `fn` over `items` with at most `limit` promises in flight. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}

/** A counting semaphore: `acquire()` waits while `limit` holders are in. */
export class Gate {
  private held = 0;
  private waiters: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.held < this.limit) {
      this.held++;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.held--;
  }
  async drain(): Promise<void> {
    while (this.held > 0) await sleep(1);
  }
}

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}
