/**
 * Fault injection per phone number (or for every number when `phone` is absent). A fault
 * fires on the next `times` matching calls (absent: until cleared). Number faults win over
 * global ones; among equals the oldest fires first.
 */
export const SmsFaultKind = {
  /** The number's SendStatusSet entry carries `code` (e.g. FailedOperation.PhoneNumberInBlacklist). */
  status: "status",
  /** The whole request answers `Response.Error` with `code` (e.g. RequestLimitExceeded, InternalError). */
  error: "error",
  /** An HTTP error status (default 502) with a non-JSON body. */
  http: "http",
  /** Never answer: the client's time-out fires. */
  timeout: "timeout",
  /** Accept (`Ok`) but push a FAIL status report with `errmsg` (default MK:0001). */
  reportFail: "report_fail",
} as const;
export type SmsFaultKind = (typeof SmsFaultKind)[keyof typeof SmsFaultKind];

export interface SmsFaultSpec {
  kind: SmsFaultKind;
  phone?: string;
  times?: number;
  code?: string;
  message?: string;
  status?: number;
  errmsg?: string;
}

export interface SmsFault extends SmsFaultSpec {
  id: string;
  remaining: number | null;
  hits: number;
}

export class SmsFaultSpecError extends Error {
  override name = "SmsFaultSpecError";
}

const KINDS = new Set<string>(Object.values(SmsFaultKind));

export function parseSmsFaultSpec(input: unknown): SmsFaultSpec {
  if (!input || typeof input !== "object" || Array.isArray(input)) throw new SmsFaultSpecError("a fault must be an object");
  const o = input as Record<string, unknown>;
  if (typeof o.kind !== "string" || !KINDS.has(o.kind)) throw new SmsFaultSpecError(`kind must be one of ${[...KINDS].join(", ")}`);
  const spec: SmsFaultSpec = { kind: o.kind as SmsFaultKind };
  for (const k of ["phone", "code", "message", "errmsg"] as const) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== "string" || !o[k]) throw new SmsFaultSpecError(`${k} must be a non-empty string`);
    spec[k] = o[k] as string;
  }
  for (const k of ["times", "status"] as const) {
    if (o[k] === undefined) continue;
    if (!Number.isInteger(o[k]) || (o[k] as number) < 1) throw new SmsFaultSpecError(`${k} must be a positive integer`);
    spec[k] = o[k] as number;
  }
  if ((spec.kind === SmsFaultKind.status || spec.kind === SmsFaultKind.error) && !spec.code) throw new SmsFaultSpecError(`${spec.kind} faults need a code`);
  if (spec.status !== undefined && (spec.status < 400 || spec.status > 599)) throw new SmsFaultSpecError("status must be 400-599");
  return spec;
}

export class SmsFaults {
  private list_: SmsFault[] = [];
  private next = 1;

  add(spec: SmsFaultSpec): SmsFault {
    const f: SmsFault = { ...parseSmsFaultSpec(spec), id: `sf_${this.next++}`, remaining: spec.times ?? null, hits: 0 };
    this.list_.push(f);
    return f;
  }

  /** The fault this call meets (consumed), if any; `phone` null = the request as a whole. */
  take(phone: string | null, kinds: readonly SmsFaultKind[]): SmsFault | undefined {
    const match = (f: SmsFault) => kinds.includes(f.kind) && (f.phone === undefined || f.phone === phone);
    const f = this.list_.find((x) => match(x) && x.phone !== undefined) ?? this.list_.find((x) => match(x));
    if (!f) return undefined;
    f.hits++;
    if (f.remaining !== null && --f.remaining <= 0) this.list_ = this.list_.filter((x) => x !== f);
    return f;
  }

  clear(filter: { phone?: string } = {}): number {
    const before = this.list_.length;
    this.list_ = filter.phone === undefined ? [] : this.list_.filter((f) => f.phone !== filter.phone);
    return before - this.list_.length;
  }

  list(): SmsFault[] {
    return this.list_.map((f) => ({ ...f }));
  }
}
