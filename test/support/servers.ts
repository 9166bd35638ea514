import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { ensureNatsServer } from "@notify/nats-server";

/** Where a second supported nats-server may be installed (Debian's package is 2.9). */
const KNOWN = ["/usr/local/bin/nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"];

/**
 * Every distinct nats-server version on this machine: the default one first, then any
 * other found at `NATS_SERVER_BINS` (comma-separated) or the usual install paths. Tests
 * whose behaviour differs between server versions run once per entry.
 */
export function serverBinaries(): { binary: string; version: string }[] {
  const extra = (process.env.NATS_SERVER_BINS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const out: { binary: string; version: string }[] = [];
  for (const binary of [ensureNatsServer(), ...extra, ...KNOWN]) {
    if (!existsSync(binary)) continue;
    const r = spawnSync(binary, ["--version"], { encoding: "utf8" });
    const version = /v?(\d+\.\d+\.\d+)/.exec(`${r.stdout}${r.stderr}`)?.[1];
    if (version && !out.some((o) => o.version === version)) out.push({ binary, version });
  }
  return out;
}
