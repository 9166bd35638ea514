const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeJson(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

export function decodeJson<T = unknown>(b: Uint8Array): T {
  return JSON.parse(dec.decode(b)) as T;
}
