import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { StorageType, jetstreamManager } from "@nats-io/jetstream";
import { ensureNatsServer } from "./find-binary.js";

/** Found once per process (and per NATS_SERVER_BIN), not on every start. */
let binary: { key: string | undefined; path: string } | null = null;
function defaultBinary(): string {
  const key = process.env.NATS_SERVER_BIN;
  if (!binary || binary.key !== key) binary = { key, path: ensureNatsServer() };
  return binary.path;
}

export interface NatsServerOptions {
  /** Enable JetStream (default true). */
  jetstream?: boolean;
  /** Fixed client port; -1 (default) lets the server pick and report it in the ports file. */
  port?: number;
  host?: string;
  /** Store dir; a temporary one (removed on stop) by default. */
  storeDir?: string;
  /** Server name (required and unique in a cluster). */
  name?: string;
  /** Cluster block: name, fixed listen port, routes. */
  cluster?: { name: string; port: number; routes: string[] };
  /** Extra config text appended verbatim (auth blocks, sync_interval, limits...). */
  extraConfig?: string;
  /** Keep the store dir on stop (for restart tests and the local run). */
  keepStore?: boolean;
  /** Max bytes of server output kept for failure messages. */
  logLimit?: number;
  binary?: string;
  /** Directories of earlier incarnations (restarts) to remove on stop. */
  cleanupDirs?: string[];
}

/** The ports file nats-server writes (2.9 names the client listener "nats"). */
interface Ports {
  nats?: string[];
  client?: string[];
  monitoring?: string[];
  cluster?: string[];
}

/** One real nats-server process. Shaped after nats.js's own test launcher (nst). */
export class NatsServer {
  private exited: Promise<number | null>;
  private logBuf: string[] = [];
  private logBytes = 0;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly opts: NatsServerOptions,
    readonly dir: string,
    private proc: ChildProcess,
    readonly port: number,
    readonly monitorPort: number,
  ) {
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
  }

  get url(): string {
    return `nats://${this.opts.host ?? "127.0.0.1"}:${this.port}`;
  }
  get monitorUrl(): string {
    return `http://${this.opts.host ?? "127.0.0.1"}:${this.monitorPort}`;
  }
  get pid(): number | undefined {
    return this.proc.pid;
  }
  get storeDir(): string {
    return this.opts.storeDir ?? path.join(this.dir, "jetstream");
  }
  /** The last lines the server printed. */
  logs(): string {
    return this.logBuf.join("");
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const bin = opts.binary ?? defaultBinary();
    const dir = mkdtempSync(path.join(tmpdir(), "nats-"));
    const portsDir = path.join(dir, "ports");
    mkdirSync(portsDir);
    const host = opts.host ?? "127.0.0.1";
    const storeDir = opts.storeDir ?? path.join(dir, "jetstream");
    const lines = [
      `listen: ${host}:${opts.port ?? -1}`,
      `http: ${host}:-1`,
      `ports_file_dir: ${JSON.stringify(portsDir)}`,
      opts.name ? `server_name: ${opts.name}` : "",
      opts.jetstream === false ? "" : `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
      opts.cluster
        ? `cluster { name: ${opts.cluster.name}, listen: ${host}:${opts.cluster.port}, routes: [${opts.cluster.routes.map((r) => JSON.stringify(r)).join(", ")}] }`
        : "",
      opts.extraConfig ?? "",
    ];
    const conf = path.join(dir, "server.conf");
    writeFileSync(conf, lines.filter(Boolean).join("\n") + "\n");
    const proc = spawn(bin, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    const limit = opts.logLimit ?? 64 * 1024;
    const holder: { server?: NatsServer } = {};
    const early: string[] = [];
    const onData = (b: Buffer) => {
      const s = b.toString();
      if (holder.server) holder.server.appendLog(s, limit);
      else early.push(s);
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    let exitCode: number | null | undefined;
    proc.once("exit", (code) => (exitCode = code ?? -1));

    // Race: the ports file appears, or the process exits early (bad config, port taken).
    const deadline = Date.now() + 15_000;
    let ports: Ports | null = null;
    while (Date.now() < deadline) {
      if (exitCode !== undefined) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`nats-server exited early (code ${exitCode}):\n${early.join("").slice(-4000)}`);
      }
      const file = readdirSync(portsDir).find((f) => f.endsWith(".ports"));
      if (file) {
        try {
          ports = JSON.parse(readFileSync(path.join(portsDir, file), "utf8")) as Ports;
          if ((ports.nats ?? ports.client)?.length && ports.monitoring?.length) break;
        } catch {
          /* partially written: read again */
        }
      }
      await sleep(10);
    }
    const clientUrl = ports?.nats?.[0] ?? ports?.client?.[0];
    if (!ports || !clientUrl) {
      proc.kill("SIGKILL");
      throw new Error(`nats-server did not report its ports in time:\n${early.join("").slice(-4000)}`);
    }
    const clientPort = Number(new URL(clientUrl).port);
    const monitorPort = Number(new URL(ports.monitoring![0]!).port);
    const server = new NatsServer({ ...opts, host, storeDir }, dir, proc, clientPort, monitorPort);
    holder.server = server;
    server.appendLog(early.join(""), limit);
    return server;
  }

  private appendLog(s: string, limit: number): void {
    this.logBuf.push(s);
    this.logBytes += s.length;
    while (this.logBytes > limit && this.logBuf.length > 1) this.logBytes -= this.logBuf.shift()!.length;
  }

  /** Kills the process (SIGKILL by default, like a crash) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    await this.exited;
  }

  /** Starts a new process on the same ports and store (after kill or stop with keepStore). */
  async restart(): Promise<NatsServer> {
    await this.kill("SIGTERM");
    return NatsServer.start({ ...this.opts, port: this.port, storeDir: this.storeDir, cleanupDirs: this.restartCleanup() });
  }

  /** A restarted server owns the dirs of its earlier incarnations unless the caller keeps the store. */
  restartCleanup(): string[] | undefined {
    return this.opts.keepStore ? undefined : [this.dir, ...(this.opts.cleanupDirs ?? [])];
  }

  /** Stops the server and removes its temporary files. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.kill("SIGTERM");
      if (this.opts.keepStore) {
        rmSync(path.join(this.dir, "ports"), { recursive: true, force: true });
        return;
      }
      for (const d of [this.dir, ...(this.opts.cleanupDirs ?? [])]) rmSync(d, { recursive: true, force: true });
    })();
    return this.stopping;
  }
}

/** A free TCP port on loopback (for cluster routes, which must be known up front). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

/** How long a forming cluster may stay stuck before `waitForMetaLeader` restarts a node. */
const NUDGE_AFTER_MS = 20_000;

/** A JetStream cluster of real servers; `servers[i]` may be killed and restarted. */
export class NatsCluster {
  /** Nodes `waitForMetaLeader` restarted to get a stuck forming cluster going (normally none). */
  readonly nudged: string[] = [];

  constructor(
    public servers: NatsServer[],
    private readonly routes: string[],
    private readonly name: string,
  ) {}

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  static async start(n = 3, opts: Omit<NatsServerOptions, "cluster" | "name" | "port"> = {}): Promise<NatsCluster> {
    // A route port from freePort() is free when read, but until nats-server binds it an
    // outgoing connection of anything running beside may take it as its local port.
    for (let attempt = 1; ; attempt++) {
      try {
        return await NatsCluster.startOnce(n, opts);
      } catch (err) {
        if (attempt >= 3 || !/address already in use/i.test(String(err))) throw err;
      }
    }
  }

  private static async startOnce(n: number, opts: Omit<NatsServerOptions, "cluster" | "name" | "port">): Promise<NatsCluster> {
    const clusterPorts = await Promise.all(Array.from({ length: n }, () => freePort()));
    const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`);
    const name = `c${process.pid}`;
    const started = await Promise.allSettled(
      clusterPorts.map((port, i) => NatsServer.start({ ...opts, name: `n${i + 1}`, cluster: { name, port, routes } })),
    );
    const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const cluster = new NatsCluster(servers, routes, name);
    try {
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      // Generous: on a loaded 2-core box the peers take a while to become current.
      await cluster.waitForMetaLeader(90_000, { nudge: true });
    } catch (err) {
      // A cluster that never formed must not outlive its caller's failed start.
      await cluster.stop().catch(() => undefined);
      throw err;
    }
    return cluster;
  }

  /**
   * Resolves when every running node reports the same JetStream meta leader and the
   * cluster can place a stream on every node. Agreement alone is not enough on 2.10: a
   * stream with replicas created before the peers are current fails with "insufficient
   * resources". The leader's view of its peers ("current") is the quick signal, but an
   * idle meta group can leave a caught-up follower marked not current for a long time
   * (seen in CI: 60 s with all three nodes agreeing), so once the leader lists every
   * peer, a throw-away R<n> stream is the decisive test — and its own meta traffic lets
   * a lagging follower catch up.
   *
   * A node can also follow the leader without the leader ever adding it to the meta
   * group (seen in CI on 2.10.27 under load: "leaders n1,n1,n1; peers n2" for 60 s). It
   * does not heal by waiting, so after `NUDGE_AFTER_MS` stuck the nodes the leader does
   * not list as current are restarted (same store), and after as long again the leader
   * is; a restarted server announces itself to the leader afresh. Only a forming cluster
   * (`start`, `nudge: true`) is nudged: a test's cluster holding data is left as it is.
   */
  async waitForMetaLeader(timeoutMs = 30_000, { nudge = false }: { nudge?: boolean } = {}): Promise<string> {
    type Meta = { leader?: string; replicas?: Array<{ name?: string; current?: boolean }> };
    const deadline = Date.now() + timeoutMs;
    let last = "";
    let nextProbe = 0;
    let stuckSince = Date.now();
    let nudges = 0;
    while (Date.now() < deadline) {
      try {
        const metas = await Promise.all(
          this.servers.map(async (s) => {
            const r = await fetch(`${s.monitorUrl}/jsz`, { signal: AbortSignal.timeout(5_000) });
            const j = (await r.json()) as { meta_cluster?: Meta };
            return j.meta_cluster ?? {};
          }),
        );
        const leaders = metas.map((m) => m.leader ?? "");
        const agreed = leaders[0] && leaders.every((l) => l === leaders[0]);
        // Only the leader's /jsz lists the replicas.
        const peers = metas.find((m) => m.replicas)?.replicas ?? [];
        last = `leaders ${leaders.join(",")}; peers ${peers.map((p) => `${p.name}:${p.current ? "current" : "behind"}`).join(",") || "none"}${this.nudged.length ? `; restarted ${this.nudged.join(",")}` : ""}`;
        if (agreed && peers.length === this.servers.length - 1) {
          if (peers.every((p) => p.current)) return leaders[0]!;
          if (Date.now() >= nextProbe) {
            nextProbe = Date.now() + 2_000;
            const placed = await this.canPlaceReplicatedStream();
            if (placed === true) return leaders[0]!;
            last += `; probe stream: ${placed}`;
          }
        }
        if (!agreed) stuckSince = Date.now();
        else if (nudge && Date.now() - stuckSince >= NUDGE_AFTER_MS && nudges < 2) {
          const leader = leaders[0]!;
          const current = new Set(peers.filter((p) => p.current).map((p) => p.name));
          const names = nudges === 0 ? this.servers.map((s) => s.opts.name ?? "").filter((n) => n !== leader && !current.has(n)) : [leader];
          nudges++;
          stuckSince = Date.now();
          for (const name of names) {
            const i = this.servers.findIndex((s) => s.opts.name === name);
            if (i < 0) continue;
            this.servers[i] = await this.servers[i]!.restart();
            this.nudged.push(name);
          }
        }
      } catch (err) {
        last = String(err);
      }
      await sleep(100);
    }
    // The servers' own last lines say why a node stayed out (routes, elections, catch-up).
    const tails = this.servers.map((s) => `--- ${s.opts.name ?? s.url} ---\n${s.logs().split("\n").slice(-12).join("\n")}`).join("\n");
    throw new Error(`cluster did not agree on a meta leader with current peers in ${timeoutMs}ms (last: ${last})\n${tails}`);
  }

  /** Creates and deletes an R<n> memory stream; true, or the reason it could not. */
  async canPlaceReplicatedStream(): Promise<true | string> {
    const name = `launcher_probe_${process.pid}_${Date.now()}`;
    let nc: Awaited<ReturnType<typeof connect>> | undefined;
    try {
      nc = await connect({ servers: this.urls, timeout: 5_000, noAsyncTraces: true });
      const jsm = await jetstreamManager(nc, { timeout: 5_000 });
      await jsm.streams.add({ name, subjects: [`_launcher_probe.${name}`], storage: StorageType.Memory, num_replicas: this.servers.length });
      await jsm.streams.delete(name).catch(() => undefined);
      return true;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      await nc?.close().catch(() => undefined);
    }
  }

  /** Kills node i (SIGKILL) and keeps its store for a later restart. */
  async kill(i: number): Promise<void> {
    await this.servers[i]!.kill("SIGKILL");
  }

  async restart(i: number): Promise<NatsServer> {
    const old = this.servers[i]!;
    await old.kill("SIGKILL");
    const s = await NatsServer.start({ ...old.opts, port: old.port, storeDir: old.storeDir, cleanupDirs: old.restartCleanup() });
    this.servers[i] = s;
    return s;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.servers.map((s) => s.stop()));
  }
}
