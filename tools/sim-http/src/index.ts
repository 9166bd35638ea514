import type { IncomingMessage, ServerResponse } from "node:http";

// Shared by tools/wechat-simulator and tools/sms-simulator: plain node:http, no framework,
// so a simulator adds next to nothing to the latency the benchmarks measure.

/** Bodies above this are refused: nothing WeChat or Tencent accepts is near it. */
export const MAX_BODY_BYTES = 256 * 1024;

export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError(`body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export type SendJson = (res: ServerResponse, status: number, body: unknown) => void;

/** A JSON answerer with the provider's own content type (WeChat adds `; encoding=utf-8`). */
export function jsonSender(contentType: string): SendJson {
  return (res, status, body) => {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
}

export const sendJson: SendJson = jsonSender("application/json");

export function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Splits `path?query` without building a URL object (this runs thousands of times a second). */
export function splitUrl(url: string | undefined): { path: string; query: URLSearchParams } {
  const u = url ?? "/";
  const q = u.indexOf("?");
  return q < 0 ? { path: u, query: new URLSearchParams() } : { path: u.slice(0, q), query: new URLSearchParams(u.slice(q + 1)) };
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
