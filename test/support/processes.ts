import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export type ServiceName = "gateway" | "dispatcher" | "sender" | "dlq-monitor" | "projector";

/**
 * A service running as its own process from `dist/` (built by `npm test`'s `tsc -b`),
 * exactly as operators run it. Keeps its log lines for assertions and failure messages.
 */
export class ServiceProcess {
  readonly lines: string[] = [];
  private readyLine: Promise<Record<string, unknown>>;
  private exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    let onReady!: (v: Record<string, unknown>) => void;
    let onFail!: (e: Error) => void;
    this.readyLine = new Promise((res, rej) => ((onReady = res), (onFail = rej)));
    this.exited = new Promise((res) => proc.once("exit", (code) => res(code)));
    for (const s of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: s }).on("line", (line) => {
        this.lines.push(line);
        if (this.lines.length > 5000) this.lines.shift();
        if (/"msg":"[\w-]+ ready"/.test(line)) {
          try {
            onReady(JSON.parse(line) as Record<string, unknown>);
          } catch {
            /* not JSON */
          }
        }
      });
    }
    void this.exited.then((code) => onFail(new Error(`${name} exited (${code}) before it was ready:\n${this.lines.slice(-30).join("\n")}`)));
  }

  /** Resolves with the service's "<name> ready" log line. */
  ready(timeoutMs = 20_000): Promise<Record<string, unknown>> {
    return Promise.race([
      this.readyLine,
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${this.name} not ready in ${timeoutMs}ms:\n${this.lines.slice(-30).join("\n")}`)), timeoutMs).unref()),
    ]);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.alive) this.proc.kill(signal);
    return this.exited;
  }

  /** SIGTERM and wait for the drain. */
  stop(): Promise<number | null> {
    return this.kill("SIGTERM");
  }
}

/** The built entry point of a service. */
export function mainJs(name: ServiceName): string {
  return path.join(root, "services", name, "dist", "main.js");
}

/** `script` defaults to the service's main.js; a test seam under test/support may stand in for it. */
export function startService(name: ServiceName, env: Record<string, string>, label: string = name, script: string = mainJs(name)): ServiceProcess {
  const proc = spawn(process.execPath, [script], {
    cwd: root,
    // SENDLOG off: a gateway would otherwise open an embedded PGlite under ./data, shared by every test file.
    env: { PATH: process.env.PATH ?? "", METRICS_PORT: "0", METRICS_HOST: "127.0.0.1", LOG_LEVEL: "info", SENDLOG: "off", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new ServiceProcess(label, proc);
}

/** A simulator's main.js (tools/<name>/dist). */
export function toolMainJs(name: "wechat-simulator" | "sms-simulator"): string {
  return path.join(root, "tools", name, "dist", "main.js");
}

/** A script of test/support (a test seam standing in for a main.js). */
export function supportScript(file: string): string {
  return path.join(root, "test", "support", file);
}

/**
 * Runs a service's main.js to its exit with `env` only (no defaults), for start-up failures:
 * the exit code and everything it printed.
 */
export function runToExit(name: ServiceName, env: Record<string, string>, timeoutMs = 20_000, script: string = mainJs(name)): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [script], { cwd: root, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  proc.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${name} still running after ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Reads one counter's total (summed over labels matching `labels`) from a /metrics text. */
export async function scrapeCounter(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
