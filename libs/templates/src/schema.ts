import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { TemplateError } from "./errors.js";
import { MAX_PATTERN_PROGRAM, PatternError, compileSafePattern, re2RegExp } from "./safe-regex.js";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** Deepest nesting of subschemas a payload_schema may have. */
export const MAX_SCHEMA_DEPTH = 32;
/** Most subschemas (objects walked as schemas) one payload_schema may have. */
export const MAX_SCHEMA_NODES = 2000;
/** Sum of compiled pattern sizes over the whole schema: bounds the regex work per event. */
export const MAX_SCHEMA_PATTERN_BUDGET = 5 * MAX_PATTERN_PROGRAM;

/** Keywords whose meaning reaches outside one synchronous, self-contained check. */
const REFUSED: Readonly<Record<string, string>> = {
  $async: "asynchronous validation is not supported: a payload is checked synchronously, once",
  $id: "schema ids are not supported: a template's schema is self-contained (use #/definitions/… with $ref)",
  $data: "$data references are not supported",
};

const SUBSCHEMA = new Set(["additionalItems", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else"]);
const SUBSCHEMA_LIST = new Set(["allOf", "anyOf", "oneOf"]);
const SUBSCHEMA_MAP = new Set(["properties", "patternProperties", "definitions", "$defs", "dependencies"]);
/** Values that are data, not schema: never walked. */
const DATA = new Set(["enum", "const", "default", "examples"]);

const SCALAR = new Set(["string", "number", "integer", "boolean", "null"]);
/** Ajv checks uniqueItems in linear time (a hash) only for items of scalar types. */
function scalarItems(items: unknown): boolean {
  if (!items || typeof items !== "object" || Array.isArray(items)) return false;
  const type = (items as { type?: unknown }).type;
  const types = Array.isArray(type) ? type : [type];
  return types.length > 0 && types.every((x) => typeof x === "string" && SCALAR.has(x));
}

/** A JSON pointer segment (RFC 6901). */
const seg = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

function refuse(path: string, keyword: string, reason: string): never {
  throw new TemplateError(`payload_schema${path || "/"}: "${keyword}" ${reason}`, "payload_schema", { details: { path: path || "/", keyword } });
}

/**
 * The allow-list, applied before Ajv sees the schema: refused keywords, remote `$ref`,
 * unknown keywords and unsafe patterns are reported with the JSON pointer where they are.
 */
function checkSchema(schema: unknown, known: (k: string) => boolean): void {
  let nodes = 0;
  let patternBudget = MAX_SCHEMA_PATTERN_BUDGET;
  const pattern = (path: string, keyword: string, source: string) => {
    try {
      const size = compileSafePattern(source).size;
      patternBudget -= size;
      if (patternBudget < 0) refuse(path, keyword, `brings the schema's patterns past ${MAX_SCHEMA_PATTERN_BUDGET} RE2 instructions in total`);
    } catch (err) {
      if (err instanceof PatternError) refuse(path, keyword, err.message);
      throw err;
    }
  };
  const walk = (s: unknown, path: string, depth: number): void => {
    if (typeof s === "boolean") return;
    if (!s || typeof s !== "object" || Array.isArray(s)) return; // Ajv reports the wrong type
    if (depth > MAX_SCHEMA_DEPTH) refuse(path, "(nesting)", `is nested more than ${MAX_SCHEMA_DEPTH} levels deep`);
    if (++nodes > MAX_SCHEMA_NODES) refuse(path, "(size)", `makes the schema larger than ${MAX_SCHEMA_NODES} subschemas`);
    for (const [k, v] of Object.entries(s)) {
      const at = `${path}/${seg(k)}`;
      if (Object.hasOwn(REFUSED, k)) refuse(at, k, `is not allowed: ${REFUSED[k]}`);
      if (DATA.has(k)) continue;
      if (v && typeof v === "object" && !Array.isArray(v) && Object.hasOwn(v, "$data") && !SUBSCHEMA_MAP.has(k)) refuse(`${at}/$data`, "$data", `is not allowed: ${REFUSED.$data}`);
      if (k === "$ref") {
        if (typeof v !== "string" || !v.startsWith("#")) refuse(at, k, "may only point inside this schema (a value starting with #)");
        continue;
      }
      if (!known(k)) refuse(at, k, "is not a known JSON Schema keyword (a typo would silently check nothing)");
      if (k === "pattern" && typeof v === "string") pattern(at, k, v);
      if (k === "uniqueItems" && v === true && !scalarItems((s as Record<string, unknown>).items)) {
        refuse(at, k, `needs "items" with a scalar "type" (string, number, integer, boolean, null): other items are compared pairwise, quadratic in the array's length`);
      }
      if (k === "items") {
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}/${i}`, depth + 1));
        else walk(v, at, depth + 1);
      } else if (SUBSCHEMA.has(k)) walk(v, at, depth + 1);
      else if (SUBSCHEMA_LIST.has(k) && Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}/${i}`, depth + 1));
      else if (SUBSCHEMA_MAP.has(k) && v && typeof v === "object" && !Array.isArray(v)) {
        for (const [name, sub] of Object.entries(v)) {
          if (k === "patternProperties") pattern(`${at}/${seg(name)}`, k, name);
          walk(sub, `${at}/${seg(name)}`, depth + 1);
        }
      }
    }
  };
  walk(schema, "", 0);
}

const DRAFT_07 = "http://json-schema.org/draft-07/schema";

/** Ajv options for a template's schema: strict (typos and unknown formats are errors), quiet. */
const OPTIONS = {
  allErrors: true,
  strict: false,
  strictSchema: true,
  strictNumbers: true,
  allowUnionTypes: true,
  // Ajv would warn on the console, past the logger's redaction.
  logger: false,
  code: { regExp: re2RegExp },
} as const;

/**
 * Checks schemas against the draft-07 meta-schema. Compiling the meta-schema costs ~20 ms,
 * so it is done once here; this instance only ever validates (it stores nothing per call),
 * and each template compiles in a fresh instance that skips the meta-schema.
 */
let metaAjv: Ajv | undefined;

function newAjv(): Ajv {
  return addFormats(new Ajv({ ...OPTIONS, meta: false, validateSchema: false }));
}

function checkMeta(schema: Record<string, unknown>): void {
  const $schema = schema.$schema;
  if ($schema !== undefined && (typeof $schema !== "string" || $schema.replace(/#$/, "") !== DRAFT_07)) {
    refuse("/$schema", "$schema", `must be ${DRAFT_07}# (the only dialect supported) or left out`);
  }
  metaAjv ??= new Ajv({ ...OPTIONS });
  if (!metaAjv.validateSchema(schema)) {
    const e = metaAjv.errors?.[0];
    throw new TemplateError(`payload_schema${e?.instancePath ?? ""}: ${e?.message ?? "is not a valid JSON Schema"}`, "payload_schema", { details: { path: e?.instancePath || "/", keyword: e?.keyword } });
  }
}

/**
 * Compiles a template's `payload_schema` in its own Ajv instance: nothing (ids, refs,
 * formats) is shared between templates or revisions. Throws TemplateError naming the place.
 */
export function compilePayloadSchema(schema: Record<string, unknown>): (data: unknown) => { ok: boolean; errors: ErrorObject[] } {
  const ajv = newAjv();
  checkSchema(schema, (k) => ajv.RULES.keywords[k] === true);
  checkMeta(schema);
  let fn: ValidateFunction;
  try {
    // $schema was checked above; without the meta-schema loaded this instance cannot resolve it.
    const { $schema: _dialect, ...body } = schema;
    fn = ajv.compile(body);
  } catch (err) {
    throw new TemplateError(`payload_schema: ${(err as Error).message}`, "payload_schema", { cause: err });
  }
  if ((fn as { $async?: unknown }).$async) refuse("", "$async", `is not allowed: ${REFUSED.$async}`);
  return (data) => {
    try {
      return fn(data) ? { ok: true, errors: [] } : { ok: false, errors: fn.errors ?? [] };
    } catch (err) {
      // e.g. a recursive $ref over data nested deeper than the stack: a failed check, not a crash.
      return { ok: false, errors: [{ keyword: "validation", instancePath: "", schemaPath: "#", params: {}, message: `could not be checked: ${(err as Error).message}` }] };
    }
  };
}
