import { randomFillSync } from "node:crypto";

/**
 * W3C trace context carried in NATS headers (`traceparent`) from the gateway or the
 * publisher through dispatcher and sender, so one notification's log lines share a trace id.
 */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export interface TraceContext {
  traceId: string;
  spanId: string;
  traceparent: string;
}

export function parseTraceparent(v: string | null | undefined): TraceContext | null {
  const m = v ? TRACEPARENT.exec(v.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return null;
  return { traceId: m[1]!, spanId: m[2]!, traceparent: v!.trim() };
}

// Ids come from a pooled buffer: one randomFillSync per 256 traces instead of two
// syscalls per event on the dispatcher's hot path.
const pool = Buffer.allocUnsafe(8192);
let offset = pool.length;
function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const s = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return s;
}

/** A new span in the caller's trace, or a new trace when there is none (or it is malformed). */
export function childTrace(parent?: string | null): TraceContext {
  const p = parseTraceparent(parent);
  const traceId = p?.traceId ?? randomHex(16);
  const spanId = randomHex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}
