const dec = new TextDecoder();

/**
 * JSON as UTF-8 bytes. Buffer.from copies into Node's pooled slab: about a third of the
 * cost of TextEncoder.encode, which allocates a fresh ArrayBuffer per call (this runs
 * several times per notification). The result is a Uint8Array like any other.
 */
export function encodeJson(v: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(v), "utf8");
}

export function decodeJson<T = unknown>(b: Uint8Array): T {
  return JSON.parse(dec.decode(b)) as T;
}
