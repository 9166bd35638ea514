/**
 * WeChat's typed template keywords (the rules in force since 2023-05-04). A keyword's name
 * prefix decides its rule (`thing1` → thing, `character_string12` → character_string);
 * breaking one makes WeChat answer 47003 `data.<key>.value invalid`, which no retry can
 * change. This module is the one owner of those rules: the gateway checks literals at
 * upsert and previews, the dispatcher enforces a template's `field_policy` at render, and
 * the WeChat simulator refuses what WeChat would refuse, all with these functions.
 *
 * Lengths are counted in Unicode code points (what WeChat calls characters).
 */
import type { FieldPolicy, WeChatTemplatePayload } from "@notify/contracts";

export type { FieldPolicy };
export const DEFAULT_FIELD_POLICY: FieldPolicy = "truncate";

export type RuleName =
  | "thing"
  | "character_string"
  | "phrase"
  | "name"
  | "amount"
  | "number"
  | "time"
  | "date"
  | "car_number"
  | "phone_number"
  | "letter"
  | "symbol"
  | "const"
  /** Any other key (e.g. a legacy `keyword1`): at most 20 characters, no line breaks. */
  | "keyword";

/** Why a value breaks its rule. */
export type Problem = "empty" | "line_break" | "too_long" | "format";

export interface FieldViolation {
  field: string;
  rule: RuleName;
  problem: Problem;
  /** e.g. `thing1: 30 characters, thing allows at most 20`. */
  message: string;
}

/** Keys WeChat no longer shows (dropped before sending). */
export const OBSOLETE_KEYS: ReadonlySet<string> = new Set(["first", "remark"]);

const LINE_BREAK = /[\r\n\u0085\u2028\u2029]/u;
const LINE_BREAKS_AROUND = /\s*[\r\n\u0085\u2028\u2029]+\s*/gu;
const HAN = /\p{Script=Han}/u;

interface RuleSpec {
  name: RuleName;
  /** Most characters allowed. */
  max: number;
  /** What the value may look like (checked after length), with a description for messages. */
  format?: { test: (v: string) => boolean; says: string };
  /** Empty is allowed (only the untyped legacy keyword). */
  allowEmpty?: boolean;
  /** `truncate` may repair this rule: line breaks become one space, then the value is cut. */
  cut?: "ellipsis" | "plain";
}

const re = (r: RegExp, says: string) => ({ test: (v: string) => r.test(v), says });

// A date: 2019年10月1日, 2019-10-01, 2019/10/01 or 2019.10.01; a time: 15:01 or 15:01:59 (24 h).
const DATE = String.raw`(\d{4})(?:年(\d{1,2})月(\d{1,2})日|([-/.])(\d{1,2})\4(\d{1,2}))`;
const TIME = String.raw`(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?`;
const TIME_POINT = new RegExp(String.raw`^(?:${DATE}\s*)?${TIME}$`, "u");
const DATE_POINT = new RegExp(String.raw`^${DATE}(?:\s*${TIME})?$`, "u");

/** A point in WeChat's formats whose date part, if any, is a real calendar day. */
function validPoint(p: string, pattern: RegExp): boolean {
  const m = pattern.exec(p.trim());
  if (!m) return false;
  if (m[1] === undefined) return true; // time only
  const year = Number(m[1]);
  const month = Number(m[2] ?? m[5]);
  const day = Number(m[3] ?? m[6]);
  if (month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** One point, or a period `a~b` (WeChat's range separator). */
const timeFormat = (pattern: RegExp, says: string) => ({
  test: (v: string) => {
    const parts = v.split(/[~～]/u);
    return parts.length <= 2 && parts.every((p) => validPoint(p, pattern));
  },
  says,
});

const RULES: Record<RuleName, RuleSpec> = {
  thing: { name: "thing", max: 20, cut: "ellipsis" },
  keyword: { name: "keyword", max: 20, allowEmpty: true, cut: "ellipsis" },
  character_string: { name: "character_string", max: 32, cut: "plain", format: re(/^[\x20-\x7e]+$/u, "letters, digits and symbols only (no Chinese)") },
  phrase: { name: "phrase", max: 5, format: re(/^\p{Script=Han}+$/u, "Chinese characters only") },
  // 10 Chinese characters (letters mixed in count as Chinese), or 20 letters/symbols.
  name: {
    name: "name",
    max: 20,
    format: {
      test: (v) => (HAN.test(v) ? [...v].length <= 10 && /^[\p{Script=Han}A-Za-z·• .]+$/u.test(v) : /^[A-Za-z\p{P}\p{S} ]+$/u.test(v)),
      says: "at most 10 Chinese characters, or 20 letters",
    },
  },
  amount: { name: "amount", max: 16, format: re(/^[¥￥$€£]?\d{1,10}(?:\.\d{1,2})?元?$/u, "an optional currency sign and a number of at most 10 digits, e.g. ¥128.50") },
  number: { name: "number", max: 32, format: re(/^-?\d+(?:\.\d+)?$/u, "digits only (a decimal point allowed)") },
  time: { name: "time", max: 40, format: timeFormat(TIME_POINT, "a 24-hour time with an optional date, e.g. 15:01 or 2019年10月1日 15:01 (a period joined by ~)") },
  date: { name: "date", max: 40, format: timeFormat(DATE_POINT, "a date with an optional 24-hour time, e.g. 2019年10月1日 or 2019-10-01 15:01 (a period joined by ~)") },
  car_number: { name: "car_number", max: 8, format: re(/^[\p{Script=Han}A-Za-z0-9][A-Za-z0-9]{0,6}[\p{Script=Han}A-Za-z0-9]?$/u, "a plate: letters and digits, Chinese only first or last, e.g. 粤A8Z888挂") },
  phone_number: { name: "phone_number", max: 17, format: re(/^[0-9+\-()# ]+$/u, "digits and symbols, e.g. +86-0766-66888866") },
  letter: { name: "letter", max: 32, format: re(/^[A-Za-z]+$/u, "letters only") },
  symbol: { name: "symbol", max: 5, format: re(/^[\p{P}\p{S}]+$/u, "symbols only") },
  // Values approved by WeChat for this template; we cannot know them, only their shape.
  const: { name: "const", max: 20 },
};

const PREFIXES = (Object.keys(RULES) as RuleName[]).filter((n) => n !== "keyword").sort((a, b) => b.length - a.length);

/** The rule a keyword follows, by its name prefix (`thing3` → thing). */
export function ruleOf(key: string): RuleName {
  const base = key.replace(/\d+$/u, "");
  return PREFIXES.find((p) => base === p) ?? "keyword";
}

/** Human description of a rule, for API answers and docs. */
export function describeRule(rule: RuleName): string {
  const r = RULES[rule];
  const len = rule === "name" ? "" : `at most ${r.max} characters`;
  return [len, r.format?.says, "no line breaks"].filter(Boolean).join(", ");
}

const length = (v: string) => [...v].length;

/** The first way `value` breaks the rule of `key`, or null when WeChat would accept it. */
export function checkField(key: string, value: string): FieldViolation | null {
  const rule = ruleOf(key);
  const r = RULES[rule];
  const v = (problem: Problem, message: string): FieldViolation => ({ field: key, rule, problem, message: `${key}: ${message}` });
  if (value.length === 0) return r.allowEmpty ? null : v("empty", `empty, ${rule} needs a value`);
  if (LINE_BREAK.test(value)) return v("line_break", `contains a line break, ${rule} allows none`);
  const n = length(value);
  if (n > r.max) return v("too_long", `${n} characters, ${rule} allows at most ${r.max}`);
  // Messages never quote the value: it may be a phone number or a name, and records keep them.
  if (r.format && !r.format.test(value)) return v("format", `not ${r.format.says} (${rule})`);
  return null;
}

/** What the policy does to one field. */
export type FieldAction = "truncate" | "reject" | "drop";

/** A finding about a rendered payload: a broken rule (with the policy's action) or a dropped key/colour. */
export interface FieldFinding {
  field: string;
  rule: RuleName | "obsolete_key" | "color";
  problem: Problem | "obsolete_key" | "color";
  message: string;
  action: FieldAction;
}

export interface EnforceResult {
  /** No finding rejects: the payload (after truncation and drops) is what WeChat gets. */
  ok: boolean;
  payload: WeChatTemplatePayload;
  findings: FieldFinding[];
  /** The findings that reject the send (empty when `ok`). */
  rejected: FieldFinding[];
}

/**
 * Applies WeChat's rules to a rendered payload: `first`/`remark` and colours are dropped
 * (WeChat no longer shows them); a broken rule is repaired under `truncate` where cutting
 * can repair it (thing and untyped keywords: line breaks → one space, then 19 characters +
 * `…`; character_string: line breaks → space, cut to 32), else the send is rejected.
 * Never throws; the input payload is not modified.
 */
export function enforceFieldRules(payload: WeChatTemplatePayload, policy: FieldPolicy = DEFAULT_FIELD_POLICY): EnforceResult {
  const findings: FieldFinding[] = [];
  const data: WeChatTemplatePayload["data"] = {};
  for (const [key, field] of Object.entries(payload.data)) {
    if (OBSOLETE_KEYS.has(key)) {
      findings.push({ field: key, rule: "obsolete_key", problem: "obsolete_key", message: `${key}: WeChat no longer shows "first" and "remark"; not sent`, action: "drop" });
      continue;
    }
    if (field.color !== undefined) {
      findings.push({ field: key, rule: "color", problem: "color", message: `${key}: custom colours are no longer shown; colour ${field.color} not sent`, action: "drop" });
    }
    const value = typeof field.value === "string" ? field.value : String(field.value);
    const broken = checkField(key, value);
    if (!broken) {
      data[key] = { value };
      continue;
    }
    const repaired = policy === "truncate" ? repair(key, value) : null;
    if (repaired !== null && checkField(key, repaired) === null) {
      findings.push({ ...broken, message: `${broken.message}; sent cut to ${length(repaired)} characters, line breaks removed`, action: "truncate" });
      data[key] = { value: repaired };
    } else {
      findings.push({ ...broken, action: "reject" });
      data[key] = { value };
    }
  }
  const out: WeChatTemplatePayload = { ...payload, data };
  const rejected = findings.filter((f) => f.action === "reject");
  return { ok: rejected.length === 0, payload: out, findings, rejected };
}

/** The truncated value for a repairable rule, or null. */
export function repair(key: string, value: string): string | null {
  const r = RULES[ruleOf(key)];
  if (!r.cut) return null;
  const flat = value.replace(LINE_BREAKS_AROUND, " ").trim();
  const chars = [...flat];
  if (chars.length <= r.max) return flat;
  return r.cut === "ellipsis" ? `${chars.slice(0, r.max - 1).join("")}…` : chars.slice(0, r.max).join("");
}

/** A template field as stored: an expression, or one with a colour. */
type TemplateField = string | { value: string; color?: string };

export interface TemplateFieldReport {
  /** Literal values that break their rule: such a template can never send. */
  errors: FieldViolation[];
  /** `first`/`remark` keys and colours: accepted, never sent. */
  warnings: FieldFinding[];
}

const MUSTACHE = /\{\{/u;

/**
 * Checks a template's keyword fields at upsert. A value with no `{{…}}` is a literal and
 * must satisfy its rule; in one with expressions, the literal text alone must not hold a
 * line break or already exceed the length.
 */
export function checkTemplateFields(data: Record<string, TemplateField>): TemplateFieldReport {
  const errors: FieldViolation[] = [];
  const warnings: FieldFinding[] = [];
  for (const [key, f] of Object.entries(data)) {
    const value = typeof f === "string" ? f : f.value;
    if (OBSOLETE_KEYS.has(key)) {
      warnings.push({ field: key, rule: "obsolete_key", problem: "obsolete_key", message: `${key}: WeChat no longer shows "first" and "remark"; it will not be sent`, action: "drop" });
      continue;
    }
    if (typeof f !== "string" && f.color !== undefined) {
      warnings.push({ field: key, rule: "color", problem: "color", message: `${key}: custom colours are no longer shown; colour ${f.color} will not be sent`, action: "drop" });
    }
    if (!MUSTACHE.test(value)) {
      const broken = checkField(key, value);
      if (broken) errors.push(broken);
      continue;
    }
    const rule = ruleOf(key);
    const literal = value.replace(/\{\{[\s\S]*?\}\}\}?/gu, "");
    if (LINE_BREAK.test(literal)) errors.push({ field: key, rule, problem: "line_break", message: `${key}: the text around the expressions contains a line break, ${rule} allows none` });
    else if (length(literal) > RULES[rule].max) errors.push({ field: key, rule, problem: "too_long", message: `${key}: the text around the expressions alone has ${length(literal)} characters, ${rule} allows at most ${RULES[rule].max}` });
  }
  return { errors, warnings };
}
