import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** nats-server could not be found or installed; the message says how to get it. */
export class NatsServerNotFoundError extends Error {
  override name = "NatsServerNotFoundError";
}

/** The oldest nats-server the deployment targets; older ones run with a warning. */
export const MIN_NATS_VERSION = "2.10.0";

/**
 * Debian's release whose package is nats-server 2.10 (2.10.27). Its package runs on
 * Debian 12 / Ubuntu 22.04 and later (it needs only libc6 >= 2.34); Debian 12's own
 * package is 2.9.10, which lacks `sync_interval` and has the quirks docs/DECISIONS.md lists.
 */
const DEBIAN_SUITE = "trixie";

/** The project's cache (gitignored): <repo>/.cache/nats-server, the same from src/ and dist/. */
export const DEFAULT_CACHE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../.cache/nats-server");

const HOW_TO_GET = `nats-server (2.10 or later) was not found. Get it one of these ways:
  - Release binary: https://github.com/nats-io/nats-server/releases, then set NATS_SERVER_BIN=/path/to/nats-server
  - macOS:          brew install nats-server
  - Docker:         docker run -p 4222:4222 nats:2.10 -js   (then set NATS_URL=nats://127.0.0.1:4222)
  - Debian/Ubuntu:  run this once as root: it downloads Debian ${DEBIAN_SUITE}'s nats-server package into
                    .cache/nats-server without changing the system's apt sources`;

export type NatsServerSource = "NATS_SERVER_BIN" | "cache" | "PATH" | "download";

export interface FoundNatsServer {
  path: string;
  /** "2.10.27", or "unknown" when `--version` printed nothing recognisable. */
  version: string;
  source: NatsServerSource;
}

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  cacheDir?: string;
  /** Searched after the PATH (default: the sbin and local dirs a non-root PATH often lacks). */
  extraDirs?: string[];
  /** Debian suite to download from (default trixie, 2.10.27; bookworm is 2.9.10 for the compatibility run). */
  suite?: string;
  /** Allow the apt download (default: only as root on Debian/Ubuntu with apt-get and dpkg-deb). */
  download?: boolean;
  log?: (msg: string) => void;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The version a binary reports ("nats-server: v2.10.27"), or null if it does not run. */
export function natsServerVersion(bin: string): string | null {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) return null;
  const m = /v?(\d+\.\d+\.\d+)/.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1]! : "unknown";
}

/** Numeric comparison of "a.b.c" versions; "unknown" sorts below everything. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (Number.isNaN(d)) return Number.isNaN(pa[i]!) ? (Number.isNaN(pb[i]!) ? 0 : -1) : 1;
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(version: string): boolean {
  return compareVersions(version, MIN_NATS_VERSION) >= 0;
}

const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/** Executables named nats-server on the PATH and in the extra dirs, in that order, once each. */
function pathCandidates(env: NodeJS.ProcessEnv, extraDirs: string[]): string[] {
  const dirs = [...(env.PATH ?? "").split(path.delimiter), ...extraDirs];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, "nats-server");
    if (seen.has(p)) continue;
    seen.add(p);
    if (isExecutable(p)) out.push(p);
  }
  return out;
}

/** Cached copies: <cacheDir>/v<version>/usr/sbin/nats-server, newest first. */
function cacheCandidates(cacheDir: string): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir)
    .filter((d) => /^v\d+\.\d+\.\d+$/.test(d))
    .sort((a, b) => compareVersions(b.slice(1), a.slice(1)))
    .map((d) => path.join(cacheDir, d, "usr/sbin/nats-server"))
    .filter(isExecutable);
}

export function canDownload(): boolean {
  return (
    process.platform === "linux" &&
    process.getuid?.() === 0 &&
    existsSync("/etc/debian_version") &&
    existsSync("/usr/bin/apt-get") &&
    existsSync("/usr/bin/dpkg-deb")
  );
}

function run(cmd: string, args: string[], cwd?: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeout: 300_000 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-8).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`);
  }
}

/**
 * Downloads Debian trixie's nats-server package with apt-get and unpacks it into the cache.
 * apt runs with a private sources list, lists dir and archives dir under <cacheDir>/apt, so
 * the system's apt configuration and package state are untouched (nothing is installed;
 * `dpkg-deb -x` only unpacks files). Package signatures are checked against the system's
 * Debian archive keys as usual. Returns the unpacked binary.
 */
export function downloadNatsServer(dir: string, log?: (msg: string) => void, suite = DEBIAN_SUITE): string {
  const cacheDir = path.resolve(dir); // apt-get download runs in another directory
  const aptDir = path.join(cacheDir, "apt");
  const lists = path.join(aptDir, "lists");
  const archives = path.join(aptDir, "archives");
  const debs = path.join(aptDir, "debs");
  for (const d of [path.join(lists, "partial"), path.join(archives, "partial"), debs]) mkdirSync(d, { recursive: true });
  const mirror = process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
  const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
  const signedBy = existsSync(keyring) ? ` [signed-by=${keyring}]` : "";
  const sources = path.join(aptDir, "sources.list");
  writeFileSync(sources, `deb${signedBy} ${mirror} ${suite} main\n`);
  const opts = [
    `-o`, `Dir::Etc::SourceList=${sources}`,
    `-o`, `Dir::Etc::SourceParts=/dev/null`,
    `-o`, `Dir::State::Lists=${lists}`,
    `-o`, `Dir::Cache::Archives=${archives}`,
    `-o`, `APT::Sandbox::User=root`,
  ];
  log?.(`nats-server: downloading Debian ${suite}'s package into ${cacheDir} (private apt lists; the system is not changed)`);
  run("apt-get", [...opts, "-q", "update"]);
  for (const f of readdirSync(debs)) rmSync(path.join(debs, f), { force: true });
  run("apt-get", [...opts, "-q", "download", `nats-server/${suite}`], debs);
  const deb = readdirSync(debs).find((f) => f.startsWith("nats-server_") && f.endsWith(".deb"));
  if (!deb) throw new Error(`apt-get download left no nats-server package in ${debs}`);
  // Unpack beside the final place, then rename: a concurrent finder sees all or nothing.
  const tmp = path.join(cacheDir, `.unpack-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  run("dpkg-deb", ["-x", path.join(debs, deb), tmp]);
  const bin = path.join(tmp, "usr/sbin/nats-server");
  const version = isExecutable(bin) ? natsServerVersion(bin) : null;
  if (!version || version === "unknown") {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`the unpacked ${deb} does not run here (${bin} --version failed)`);
  }
  const dest = path.join(cacheDir, `v${version}`);
  try {
    renameSync(tmp, dest);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process won the race
  }
  rmSync(path.join(debs, deb), { force: true });
  return path.join(dest, "usr/sbin/nats-server");
}

/**
 * Finds nats-server, in this order:
 *  1. `$NATS_SERVER_BIN` (must be executable; used whatever its version);
 *  2. the project cache (.cache/nats-server), newest version first;
 *  3. the PATH (and /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin) - the first
 *     one that is 2.10 or later;
 *  4. on Debian/Ubuntu as root: Debian trixie's package, downloaded into the cache;
 *  5. an older server from the PATH, with a warning;
 *  6. otherwise a NatsServerNotFoundError saying how to get one.
 * Logs the chosen binary and its version; warns when it is older than 2.10.
 */
export function findNatsServer(opts: FindOptions = {}): FoundNatsServer {
  const env = opts.env ?? process.env;
  const cacheDir = opts.cacheDir ?? env.NATS_SERVER_CACHE ?? DEFAULT_CACHE_DIR;
  const found = (p: string, source: NatsServerSource, version = natsServerVersion(p) ?? "unknown"): FoundNatsServer => {
    const r = { path: p, version, source };
    opts.log?.(`nats-server: v${version} at ${p} (from ${source})`);
    if (!isSupportedVersion(version)) {
      opts.log?.(
        `WARNING: nats-server v${version} is older than ${MIN_NATS_VERSION}, the version the deployment runs; ` +
          `it works, but without sync_interval and with the quirks docs/DECISIONS.md lists.`,
      );
    }
    return r;
  };

  const explicit = env.NATS_SERVER_BIN;
  if (explicit) {
    if (!isExecutable(explicit)) throw new NatsServerNotFoundError(`NATS_SERVER_BIN=${explicit} is not an executable file.\n${HOW_TO_GET}`);
    return found(explicit, "NATS_SERVER_BIN");
  }
  for (const p of cacheCandidates(cacheDir)) {
    const v = natsServerVersion(p);
    if (v) return found(p, "cache", v);
  }
  let old: { path: string; version: string } | null = null;
  for (const p of pathCandidates(env, opts.extraDirs ?? EXTRA_DIRS)) {
    const v = natsServerVersion(p);
    if (!v) continue;
    if (isSupportedVersion(v)) return found(p, "PATH", v);
    old ??= { path: p, version: v };
  }
  let downloadError = "";
  if (opts.download ?? canDownload()) {
    try {
      return found(downloadNatsServer(cacheDir, opts.log, opts.suite), "download");
    } catch (err) {
      downloadError = (err as Error).message;
      opts.log?.(`nats-server: the download failed: ${downloadError}`);
    }
  }
  if (old) return found(old.path, "PATH", old.version);
  throw new NatsServerNotFoundError(downloadError ? `${HOW_TO_GET}\n(The download failed: ${downloadError})` : HOW_TO_GET);
}

/** The path of the binary findNatsServer chooses (what the launcher, the tests, the bench and `npm start` run). */
export function ensureNatsServer(opts: FindOptions = {}): string {
  return findNatsServer(opts).path;
}

/** `$NATS_SERVER_BIN`, the cache or the PATH, without downloading or logging. Null when absent. */
export function locateNatsServer(opts: Omit<FindOptions, "download" | "log"> = {}): string | null {
  try {
    return findNatsServer({ ...opts, download: false }).path;
  } catch (err) {
    if (err instanceof NatsServerNotFoundError && !(opts.env ?? process.env).NATS_SERVER_BIN) return null;
    throw err;
  }
}
