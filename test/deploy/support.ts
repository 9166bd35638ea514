/**
 * Helpers for the deployment structural tests: paths, YAML documents, the NATS config
 * format, Compose variable defaults and optional CLIs (docker compose, kubectl,
 * nats-server) that validate further when this machine has them.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import { MetricsEnv } from "@notify/config";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const at = (...parts: string[]): string => path.join(ROOT, ...parts);
export const readText = (...parts: string[]): string => readFileSync(at(...parts), "utf8");

/** The services of the README's operator contract, each started with `node services/<name>/dist/main.js`. */
export const SERVICES = ["gateway", "dispatcher", "sender", "dlq-monitor", "projector"] as const;
export const WORKERS = ["dispatcher", "sender", "dlq-monitor", "projector"] as const;
export const mainOf = (name: string): string => `services/${name}/dist/main.js`;

/** The workers' METRICS_PORT default, read from the config schema that owns it (9464). */
export const METRICS_PORT = Number((MetricsEnv.METRICS_PORT as unknown as { default: unknown }).default);
/** The gateway's documented default port (README, operator contract). */
export const GATEWAY_PORT = 3000;

// ---------------------------------------------------------------- YAML

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A nested value, or undefined when any step is missing: get(doc, "spec", "template"). */
export function get(v: unknown, ...keys: (string | number)[]): unknown {
  let cur = v;
  for (const k of keys) {
    if (Array.isArray(cur) && typeof k === "number") cur = cur[k];
    else if (isObj(cur) && typeof k === "string") cur = cur[k];
    else return undefined;
  }
  return cur;
}

export const objAt = (v: unknown, ...keys: string[]): Obj => {
  const r = get(v, ...keys);
  return isObj(r) ? r : {};
};
export const listAt = (v: unknown, ...keys: string[]): unknown[] => {
  const r = get(v, ...keys);
  return Array.isArray(r) ? r : [];
};

/** One YAML file with merge keys (`<<: *anchor`) resolved, as Compose reads it. */
export function loadYaml(...parts: string[]): Obj {
  const doc = parse(readText(...parts), { merge: true, prettyErrors: true }) as unknown;
  if (!isObj(doc)) throw new Error(`${parts.join("/")}: not a YAML mapping`);
  return doc;
}

/** Every document of a multi-document YAML file; a syntax error in any one throws. */
export function loadYamlDocuments(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { merge: true, prettyErrors: true });
  if (!Array.isArray(docs)) throw new Error(`${file}: empty`);
  const out: Obj[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    if (!isObj(v)) throw new Error(`${file}: a document is not a mapping`);
    out.push(v);
  }
  return out;
}

// ---------------------------------------------------------------- Compose

/** `${NAME:-default}` / `${NAME-default}` / `${NAME}` as Compose resolves them with an empty environment. */
export function composeDefault(value: string): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_m, _name: string, def: string | undefined) => def ?? "");
}

/** Compose `environment` as a map, whether written as a mapping or a list of NAME=value. */
export function envOf(service: unknown): Record<string, string> {
  const env = get(service, "environment");
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const e of env) {
      const [k, ...rest] = String(e).split("=");
      if (k) out[k] = composeDefault(rest.join("="));
    }
  } else if (isObj(env)) {
    for (const [k, v] of Object.entries(env)) out[k] = composeDefault(v === null || v === undefined ? "" : String(v));
  }
  return out;
}

// ---------------------------------------------------------------- NATS config

/**
 * Reads a nats-server config file with its `include` lines inlined (paths relative to
 * the including file), comments removed. Enough for the structural checks; the real
 * parser (`nats-server -t`) runs too when the binary is present.
 */
export function natsConfText(file: string, depth = 0): string {
  if (depth > 5) throw new Error(`include nesting too deep at ${file}`);
  const lines = readFileSync(file, "utf8").split("\n");
  const out: string[] = [];
  for (const raw of lines) {
    const line = raw.replace(/(^|\s)#.*$/, "").replace(/(^|\s)\/\/.*$/, "");
    const inc = /^\s*include\s+["']?([^"'\s]+)["']?\s*;?\s*$/.exec(line);
    if (inc?.[1]) out.push(natsConfText(path.resolve(path.dirname(file), inc[1]), depth + 1));
    else out.push(line);
  }
  return out.join("\n");
}

/** The value of `key: value` / `key = value` / `key value` (first occurrence), unquoted. */
export function natsValue(text: string, key: string): string | undefined {
  const m = new RegExp(`(?:^|[\\s{,])${key}\\s*[:=]?\\s*("[^"]*"|'[^']*'|[^\\s,}]+)`, "m").exec(text);
  return m?.[1]?.replace(/^["']|["']$/g, "");
}

/** The body of a `name { ... }` block (balanced braces), or undefined. */
export function natsBlock(text: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name}\\s*[:=]?\\s*\\{`, "m").exec(text);
  if (!m) return undefined;
  let depth = 0;
  const start = m.index + m[0].length;
  for (let i = start; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}") {
      if (depth === 0) return text.slice(start, i);
      depth--;
    }
  }
  return undefined;
}

/** The URLs in `routes: [ ... ]`. */
export function natsRoutes(text: string): string[] {
  const m = /(?:^|\s)routes\s*[:=]?\s*\[([^\]]*)\]/m.exec(text);
  if (!m?.[1]) return [];
  return m[1]
    .split(/[\s,]+/)
    .map((s) => s.replace(/^["']|["']$/g, ""))
    .filter(Boolean);
}

/** sync_interval is either `always` or a duration; returns milliseconds (0 = always). */
export function syncIntervalMs(value: string): number | undefined {
  if (value.toLowerCase() === "always") return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (!m?.[1] || !m[2]) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}

// ---------------------------------------------------------------- optional CLIs

export interface Cli {
  ok: boolean;
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Cli {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? ROOT, encoding: "utf8", timeout: opts.timeoutMs ?? 60_000 });
  return { ok: r.status === 0, status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? (r.error ? String(r.error) : "") };
}

/**
 * A Compose v2 binary (test/compose/compose-bin.sh: an installed plugin, else Debian
 * trixie's package fetched into .cache/compose), or why there is none. It runs standalone:
 * `config` needs no Docker engine.
 */
export function composeBinary(): { bin: string } | { unavailable: string } {
  const r = run("bash", ["test/compose/compose-bin.sh"], { timeoutMs: 180_000 });
  const bin = r.stdout.trim().split("\n").pop() ?? "";
  if (!r.ok || !bin) return { unavailable: `no Compose v2 here (${(r.stderr || r.stdout).trim().split("\n").pop() || "not found"}); the structure is checked by parsing` };
  return { bin };
}

/** The nats-server binary and its version, or null. */
export function natsServer(): { bin: string; major: number; minor: number } | null {
  const candidates = [process.env.NATS_SERVER_BIN, "nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"].filter(
    (c): c is string => Boolean(c),
  );
  for (const bin of candidates) {
    if (bin.includes("/") && !existsSync(bin)) continue;
    const r = run(bin, ["--version"], { timeoutMs: 10_000 });
    const m = /v?(\d+)\.(\d+)\.\d+/.exec(r.stdout + r.stderr);
    if (r.ok && m?.[1] && m[2]) return { bin, major: Number(m[1]), minor: Number(m[2]) };
  }
  return null;
}

/** The text outside every `{ ... }` block: top-level settings only. */
export function natsTopLevel(text: string): string {
  let depth = 0;
  let out = "";
  for (const ch of text) {
    if (ch === "{") depth++;
    else if (ch === "}") depth = Math.max(0, depth - 1);
    else if (depth === 0) out += ch;
  }
  return out;
}
