/** A capturing logger and a real local webhook server: for the alerting unit and its host, the DLQ monitor. */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "@notify/log";

/** A pino logger whose JSON lines are kept in memory. */
export function captureLogger(name = "dlq-monitor", level = "debug"): { log: Logger; lines: () => string[]; text: () => string } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ name, level }, dest);
  const text = () => chunks.join("");
  return { log, text, lines: () => text().split("\n").filter(Boolean) };
}

export interface CapturedRequest {
  method: string;
  url: string;
  body: string;
  at: number;
}

/** A real local HTTP server capturing POSTs; `respond` decides each answer (or hangs when it returns null). */
export async function startWebhookServer(respond: (n: number, req: IncomingMessage) => number | null = () => 204): Promise<{ url: string; requests: CapturedRequest[]; close(): Promise<void> }> {
  const requests: CapturedRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      requests.push({ method: req.method ?? "", url: req.url ?? "", body, at: Date.now() });
      const status = respond(requests.length, req);
      if (status === null) return; // hang until the client gives up
      res.writeHead(status, { "content-type": "application/json" }).end(status < 300 ? '{"ok":true}' : '{"ok":false}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

