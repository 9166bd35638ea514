/**
 * Fault injection. A fault matches calls on one endpoint (`send` or `token`),
 * optionally only sends to one openid, and fires on the next `times` matching calls
 * (absent: on every call until cleared, i.e. an outage). Openid faults win over global
 * ones; among equals the oldest fires first. Latency faults add delay and stack with
 * one failure fault.
 */
export const FaultKind = {
  /** Answer HTTP 200 with `{errcode, errmsg}`. */
  errcode: "errcode",
  /** Answer an HTTP error status (default 503) with a non-JSON body, like a gateway. */
  http: "http",
  /** Destroy the connection without an answer. */
  drop: "drop",
  /** Never answer (the client's time-out fires). */
  timeout: "timeout",
  /** Answer normally after `ms` more milliseconds. */
  latency: "latency",
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

export const FaultTarget = { send: "send", token: "token" } as const;
export type FaultTarget = (typeof FaultTarget)[keyof typeof FaultTarget];

export interface FaultSpec {
  kind: FaultKind;
  /** Which endpoint; `token` covers `cgi-bin/token` and `cgi-bin/stable_token`. Default `send`. */
  target?: FaultTarget;
  /** Only sends to this openid. */
  openid?: string;
  /** Fire on the next N matching calls, then disappear. Absent: until cleared. */
  times?: number;
  /** `errcode` faults: the errcode (e.g. -1, 45011, 43004, 45009, 40001) and an optional errmsg. */
  errcode?: number;
  errmsg?: string;
  /** `http` faults: the status (default 503). */
  status?: number;
  /** `latency` faults: added milliseconds. */
  ms?: number;
  /**
   * `drop` / `timeout` on send: accept and record the message first, then lose the
   * response (the case `client_msg_id` exists for).
   */
  afterAccept?: boolean;
}

export interface Fault extends FaultSpec {
  id: string;
  target: FaultTarget;
  /** Calls it still fires on; null = until cleared. */
  remaining: number | null;
  hits: number;
}

/** A fault spec that cannot be applied; the control API answers 400 with its message. */
export class FaultSpecError extends Error {
  override name = "FaultSpecError";
}

const KINDS = new Set<string>(Object.values(FaultKind));
const TARGETS = new Set<string>(Object.values(FaultTarget));

/** Checks a spec from the in-process API or a JSON body. */
export function parseFaultSpec(input: unknown): FaultSpec {
  if (!input || typeof input !== "object" || Array.isArray(input)) throw new FaultSpecError("a fault must be an object");
  const o = input as Record<string, unknown>;
  const kind = o.kind;
  if (typeof kind !== "string" || !KINDS.has(kind)) throw new FaultSpecError(`kind must be one of ${[...KINDS].join(", ")}`);
  const spec: FaultSpec = { kind: kind as FaultKind };
  if (o.target !== undefined) {
    if (typeof o.target !== "string" || !TARGETS.has(o.target)) throw new FaultSpecError(`target must be one of ${[...TARGETS].join(", ")}`);
    spec.target = o.target as FaultTarget;
  }
  if (o.openid !== undefined) {
    if (typeof o.openid !== "string" || !o.openid) throw new FaultSpecError("openid must be a non-empty string");
    if (spec.target === FaultTarget.token) throw new FaultSpecError("openid applies to send faults only");
    spec.openid = o.openid;
  }
  if (o.times !== undefined) spec.times = positiveInt(o.times, "times");
  if (kind === FaultKind.errcode) {
    if (typeof o.errcode !== "number" || !Number.isInteger(o.errcode) || o.errcode === 0) throw new FaultSpecError("errcode faults need a non-zero integer errcode");
    spec.errcode = o.errcode;
    if (o.errmsg !== undefined) {
      if (typeof o.errmsg !== "string") throw new FaultSpecError("errmsg must be a string");
      spec.errmsg = o.errmsg;
    }
  }
  if (kind === FaultKind.http) {
    const status = o.status ?? 503;
    if (typeof status !== "number" || !Number.isInteger(status) || status < 400 || status > 599) throw new FaultSpecError("status must be an HTTP error status (400-599)");
    spec.status = status;
  }
  if (kind === FaultKind.latency) spec.ms = positiveInt(o.ms, "ms");
  if (o.afterAccept !== undefined) {
    if (typeof o.afterAccept !== "boolean") throw new FaultSpecError("afterAccept must be a boolean");
    if (kind !== FaultKind.drop && kind !== FaultKind.timeout) throw new FaultSpecError("afterAccept applies to drop and timeout faults");
    spec.afterAccept = o.afterAccept;
  }
  return spec;
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new FaultSpecError(`${name} must be a positive integer`);
  return v;
}

export interface FaultPick {
  latencyMs: number;
  failure: Fault | null;
}

const NONE: FaultPick = Object.freeze({ latencyMs: 0, failure: null }) as FaultPick;

export class FaultBook {
  private faults: Fault[] = [];
  private seq = 0;

  add(spec: FaultSpec): Fault {
    const s = parseFaultSpec(spec);
    const f: Fault = { ...s, id: `f${++this.seq}`, target: s.target ?? FaultTarget.send, remaining: s.times ?? null, hits: 0 };
    this.faults.push(f);
    return f;
  }

  /** Removes every fault, or only those for one openid. Returns how many went. */
  clear(filter: { openid?: string } = {}): number {
    const before = this.faults.length;
    this.faults = filter.openid === undefined ? [] : this.faults.filter((f) => f.openid !== filter.openid);
    return before - this.faults.length;
  }

  list(): Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  get size(): number {
    return this.faults.length;
  }

  /** The faults this call meets; spends one use of each. */
  pick(target: FaultTarget, openid?: string): FaultPick {
    if (this.faults.length === 0) return NONE;
    let latencyMs = 0;
    let failure: Fault | null = null;
    for (const f of this.faults) {
      if (f.target !== target || (f.openid !== undefined && f.openid !== openid)) continue;
      if (f.kind === FaultKind.latency) {
        latencyMs += f.ms ?? 0;
        this.spend(f);
      } else if (!failure || (failure.openid === undefined && f.openid !== undefined)) {
        failure = f;
      }
    }
    if (failure) this.spend(failure);
    if (this.faults.some((f) => f.remaining === 0)) this.faults = this.faults.filter((f) => f.remaining !== 0);
    return latencyMs === 0 && !failure ? NONE : { latencyMs, failure: failure ? { ...failure } : null };
  }

  private spend(f: Fault): void {
    f.hits++;
    if (f.remaining !== null) f.remaining--;
  }
}
