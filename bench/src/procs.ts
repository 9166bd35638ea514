import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every process the bench starts, so an interrupted run still cleans up after itself. */
const live = new Set<Proc>();

/** A child process that announces readiness with one log line. */
export class Proc {
  readonly lines: string[] = [];
  private readonly exited: Promise<number | null>;
  private readonly ready: Promise<string>;

  constructor(
    readonly label: string,
    readonly proc: ChildProcess,
    readyLine: RegExp,
  ) {
    live.add(this);
    this.exited = new Promise((res) => proc.once("exit", (code, signal) => (live.delete(this), res(code ?? (signal ? -1 : null)))));
    // BENCH_PROC_LOG_DIR keeps every line of every process (e.g. with --trace-gc in the node args).
    const logDir = process.env.BENCH_PROC_LOG_DIR;
    const logFile = logDir ? path.join(logDir, `${label.replace(/[^\w.-]/g, "_")}.${proc.pid ?? "x"}.log`) : null;
    this.ready = new Promise((resolve, reject) => {
      for (const s of [proc.stdout, proc.stderr]) {
        if (!s) continue;
        createInterface({ input: s }).on("line", (line) => {
          if (logFile) appendFileSync(logFile, `${line}\n`);
          this.lines.push(line);
          if (this.lines.length > 200) this.lines.shift();
          if (readyLine.test(line)) resolve(line);
        });
      }
      void this.exited.then((code) => reject(new Error(`${label} exited (${code}) before it was ready:\n${this.lines.slice(-30).join("\n")}`)));
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async waitReady(timeoutMs = 30_000): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.ready,
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${this.label} not ready in ${timeoutMs} ms:\n${this.lines.slice(-30).join("\n")}`)), timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.alive && this.proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** Processes started elsewhere (nats-server by @notify/nats-server), by pid. */
const livePids = new Set<number>();

export function track(pid: number | undefined): void {
  if (pid) livePids.add(pid);
}

export function untrack(pid: number | undefined): void {
  if (pid) livePids.delete(pid);
}

/** Kills whatever is still running (on a failure or Ctrl-C). */
export function killAll(): void {
  for (const p of live) if (p.alive) p.proc.kill("SIGKILL");
  for (const pid of livePids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

export function spawnNode(label: string, script: string, env: Record<string, string>, readyLine: RegExp, nodeArgs: string[] = []): Proc {
  const proc = spawn(process.execPath, [...nodeArgs, script], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Proc(label, proc, readyLine);
}

export type ServiceName = "dispatcher" | "sender";

/** A service exactly as operators run it: `node services/<name>/dist/main.js`, env only. */
/** `servicesRoot`: another checkout's build (e.g. a baseline for before/after runs). */
export function startService(name: ServiceName, env: Record<string, string>, label: string = name, nodeArgs: string[] = [], servicesRoot: string = root): Proc {
  return spawnNode(label, path.join(servicesRoot, "services", name, "dist", "main.js"), { METRICS_PORT: "0", METRICS_HOST: "127.0.0.1", LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info", ...env }, new RegExp(`"msg":"${name} ready"`), nodeArgs);
}

/** The WeChat simulator process; resolves with its base URL. */
export async function startSimulatorProc(latencyMs = 0, nodeArgs: string[] = []): Promise<{ proc: Proc; url: string }> {
  const proc = spawnNode("simulator", path.join(root, "tools", "wechat-simulator", "dist", "main.js"), { SIM_PORT: "0", SIM_LATENCY_MS: String(latencyMs) }, /wechat simulator listening/, nodeArgs);
  const line = await proc.waitReady();
  return { proc, url: String((JSON.parse(line) as { url: string }).url) };
}

/** The service's /metrics URL from its ready line. */
export function metricsUrl(readyLine: string): string {
  return String((JSON.parse(readyLine) as { metrics: string }).metrics);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Finds redis-server; on Debian as root installs the distribution package when it is absent. */
export function ensureRedisServer(): string {
  const find = () => ["/usr/bin/redis-server", "/usr/local/bin/redis-server", ...(process.env.PATH ?? "").split(":").map((d) => path.join(d, "redis-server"))].find((p) => existsSync(p));
  let bin = process.env.REDIS_SERVER_BIN || find();
  if (!bin && existsSync("/etc/debian_version") && process.getuid?.() === 0) {
    process.stderr.write("redis-server not found: apt-get install -y redis-server\n");
    spawnSync("apt-get", ["install", "-y", "-q", "redis-server"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    bin = find();
  }
  if (!bin) throw new Error("redis-server not found: install it (Debian: apt-get install -y redis-server) or set REDIS_SERVER_BIN");
  return bin;
}

export function versionOf(bin: string, args: string[], re: RegExp): string {
  const r = spawnSync(bin, args, { encoding: "utf8" });
  return re.exec(`${r.stdout}${r.stderr}`)?.[1] ?? "unknown";
}

/** A throwaway redis-server with AOF (appendfsync everysec), for the BullMQ peer. */
export class RedisServer {
  private constructor(
    readonly proc: Proc,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(bin: string): Promise<RedisServer> {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), "bench-redis-"));
    const proc = new Proc(
      "redis-server",
      spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"], { stdio: ["ignore", "pipe", "pipe"] }),
      /Ready to accept connections/,
    );
    await proc.waitReady(15_000);
    return new RedisServer(proc, port, dir);
  }

  get pid(): number {
    return this.proc.pid;
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
