import { Type, type Static, type TObject, type TProperties } from "typebox";
import { Value } from "typebox/value";

/** A bad or missing environment variable; the message names it. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    message: string,
    readonly variables: string[],
  ) {
    super(message);
  }
}

/** Comma-separated list in one variable (NATS_URL, GATEWAY_API_KEYS). */
export const CsvList = (opts: { description?: string; default?: string[]; minItems?: number } = {}) =>
  Type.Array(Type.String({ minLength: 1 }), { ...opts, "x-csv": true });

/**
 * Reads the schema's keys from `env`, converts strings to the declared types, applies
 * defaults and validates. Any failure throws one ConfigError naming every bad variable.
 */
export function loadConfig<P extends TProperties>(schema: TObject<P>, env: NodeJS.ProcessEnv = process.env): Static<TObject<P>> {
  const raw: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(schema.properties)) {
    const v = env[key];
    if (v === undefined || v === "") continue;
    raw[key] = (prop as { "x-csv"?: boolean })["x-csv"] ? v.split(",").map((s) => s.trim()).filter(Boolean) : v;
  }
  const value = Value.Convert(schema, Value.Default(schema, raw));
  if (Value.Check(schema, value)) return value as Static<TObject<P>>;
  const problems = new Map<string, string>();
  for (const e of Value.Errors(schema, value)) {
    const path = e.instancePath.replace(/^\//, "").split("/")[0] ?? "";
    const name = path || (e.params as { requiredProperties?: string[] }).requiredProperties?.[0] || "(config)";
    // A schema may word its own refusal ("x-error"), e.g. Port's "must be a port number".
    const own = (schema.properties[name] as { "x-error"?: string } | undefined)?.["x-error"];
    if (!problems.has(name)) problems.set(name, `${name}: ${own ?? e.message}${name in raw ? ` (got ${JSON.stringify(redactIfSecret(name, raw[name]))})` : " (not set)"}`);
  }
  throw new ConfigError(`invalid configuration:\n  ${[...problems.values()].join("\n  ")}`, [...problems.keys()]);
}

function redactIfSecret(name: string, v: unknown): unknown {
  // URLs may carry credentials (nats://user:pass@host, webhook tokens in the path).
  return /PASS|SECRET|TOKEN|KEY|SEED|CREDS|URL/i.test(name) ? "[redacted]" : v;
}
