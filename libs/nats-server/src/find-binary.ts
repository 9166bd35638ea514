import { accessSync, constants, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";

/** nats-server could not be found or installed; the message says how to get it. */
export class NatsServerNotFoundError extends Error {
  override name = "NatsServerNotFoundError";
}

const HOW_TO_GET = `nats-server was not found. Get it one of these ways:
  - Debian/Ubuntu:  sudo apt-get install -y nats-server
  - macOS:          brew install nats-server
  - Docker:         docker run -p 4222:4222 nats:2.10 -js   (then set NATS_URL=nats://127.0.0.1:4222)
  - Release binary: https://github.com/nats-io/nats-server/releases, then set NATS_SERVER_BIN=/path/to/nats-server`;

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `$NATS_SERVER_BIN`, then the PATH (and the usual sbin dirs). Null when absent. */
export function locateNatsServer(env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = env.NATS_SERVER_BIN;
  if (explicit) {
    if (!isExecutable(explicit)) throw new NatsServerNotFoundError(`NATS_SERVER_BIN=${explicit} is not an executable file.\n${HOW_TO_GET}`);
    return explicit;
  }
  const dirs = [...(env.PATH ?? "").split(path.delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, "nats-server");
    if (isExecutable(p)) return p;
  }
  return null;
}

/**
 * Finds nats-server; on Debian/Ubuntu as root installs the distribution package
 * (2.9.x) when it is absent. Anything else fails with instructions.
 */
export function ensureNatsServer(opts: { install?: boolean; log?: (msg: string) => void } = {}): string {
  const found = locateNatsServer();
  if (found) return found;
  const canApt = existsSync("/etc/debian_version") && process.getuid?.() === 0 && existsSync("/usr/bin/apt-get");
  if (opts.install !== false && canApt) {
    opts.log?.("nats-server not found: installing the Debian package (apt-get install -y nats-server)");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = spawnSync("apt-get", ["install", "-y", "-q", "nats-server"], { stdio: "inherit", env });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update", "-q"], { stdio: "inherit", env });
      r = spawnSync("apt-get", ["install", "-y", "-q", "nats-server"], { stdio: "inherit", env });
    }
    const after = locateNatsServer();
    if (after) return after;
  }
  throw new NatsServerNotFoundError(HOW_TO_GET);
}
