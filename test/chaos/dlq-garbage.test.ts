// Property-based (fast-check): whatever is published on notify.dlq.<channel> (bytes,
// JSON, jobs with fields of the wrong type, headers no client would write), the DLQ API
// answers without a 5xx, lists every entry, and every entry can be discarded.
import t from "tap";
import fc from "fast-check";
import { connect, type MsgHdrs } from "@nats-io/transport-node";
import { HeaderNames, Streams, Subjects, type SendJob } from "@notify/contracts";
import { ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { createLogger } from "@notify/log";
import { buildApp } from "@notify/gateway";
import { createDlqMonitor } from "@notify/dlq-monitor";
import { paidJob } from "../support/fixtures.js";

const API_KEY = "chaos-dlq-garbage-key-0b1e55";
const AUTH = { authorization: `Bearer ${API_KEY}` };
const MESSAGES = 300;

const job = (n: number): SendJob => paidJob(`O-G-${n}`, `evt_g_${n}`);
const JOB_FIELDS = [...Object.keys(job(0)), "payload.data", "__proto__", "constructor"];

/** A job with some fields replaced by arbitrary JSON (or removed). */
const mutatedJob = fc
  .tuple(fc.nat(1_000_000), fc.dictionary(fc.constantFrom(...JOB_FIELDS), fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }), { maxKeys: 3 }))
  .map(([n, over]) => {
    const j: Record<string, unknown> = JSON.parse(JSON.stringify(job(n)));
    for (const [k, v] of Object.entries(over)) {
      if (k === "payload.data") {
        // `payload` itself may have been replaced by a string or null just before.
        if (typeof j.payload === "object" && j.payload !== null) (j.payload as Record<string, unknown>).data = v;
        else j.payload = { data: v };
      }
      else Object.defineProperty(j, k, { value: v, enumerable: true, configurable: true, writable: true });
    }
    return Buffer.from(JSON.stringify(j) ?? "");
  });

const body = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? "")),
  fc.string({ unit: "binary", maxLength: 512 }).map((s) => Buffer.from(s)),
  mutatedJob,
  fc.nat(1_000_000).map((n) => Buffer.from(JSON.stringify(job(n)))),
);

/** Header lines as the wire carries them: any text but CR/LF, names a client would refuse included. */
const lineText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const headerLine = fc.oneof(
  fc.tuple(fc.constantFrom(HeaderNames.attempts, HeaderNames.reason, HeaderNames.lastError, HeaderNames.sendId, HeaderNames.traceparent), lineText).map(([k, v]) => `${k}: ${v}`),
  fc.tuple(lineText.filter((s) => s.length > 0 && !s.includes(":")), lineText).map(([k, v]) => `${k}: ${v}`),
  lineText,
);
const headerBlock = fc.option(
  fc.array(headerLine, { maxLength: 8 }).map((lines): MsgHdrs => ({ encode: () => Buffer.from(`NATS/1.0\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`) }) as unknown as MsgHdrs),
  { nil: undefined },
);
const channel = fc.oneof(fc.constantFrom("wechat", "sms"), fc.stringMatching(/^[a-z0-9_-]{1,12}$/));
const message = fc.record({ channel, body, headers: headerBlock });

t.test("chaos - arbitrary messages on notify.dlq.*: the DLQ API never answers 5xx and every entry can be discarded", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const topology = await ensureTopology(nc);
  const { jsm } = topology;
  const log = createLogger({ name: "dlq-garbage", level: "silent" });
  const app = buildApp({ nc, topology, settings: { apiKeys: [API_KEY], auth: "on", rateLimitPerMinute: 1_000_000 }, log });
  t.teardown(() => app.close());
  await app.ready();
  const monitor = createDlqMonitor({ nc, log, settings: { dlqAlertThreshold: 1_000_000 } });
  await monitor.start();
  t.teardown(() => monitor.close());

  const seen = { requests: 0, unreadable: 0, readable: 0, replayed: 0 };
  const call = async (method: "GET" | "POST" | "DELETE", url: string) => {
    const res = await app.inject({ method, url, headers: AUTH });
    seen.requests++;
    if (res.statusCode >= 500) throw new Error(`${method} ${url} answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
    return res;
  };

  await fc.assert(
    fc.asyncProperty(fc.array(message, { minLength: MESSAGES, maxLength: MESSAGES }), fc.integer({ min: 1, max: 40 }), async (msgs, pageSize) => {
      await jsm.streams.purge(Streams.dlq);
      await jsm.streams.purge(Streams.sends);
      for (const m of msgs) nc.publish(Subjects.dlq(m.channel), m.body, m.headers ? { headers: m.headers } : {});
      await nc.flush();
      // Core publishes are stored asynchronously after the flush: wait for the stream to hold them.
      let stored = 0;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        stored = (await jsm.streams.info(Streams.dlq)).state.messages;
        if (stored >= msgs.length) break;
      }
      if (stored !== msgs.length) throw new Error(`the stream kept ${stored} of ${msgs.length}`);
      if ((await monitor.checkDlqDepth()) !== stored) throw new Error("the DLQ monitor miscounted");

      // Every entry listed, page by page.
      const entries: { seq: number; readable: boolean }[] = [];
      let from: number | undefined;
      do {
        const res = await call("GET", `/notifications/dlq?limit=${pageSize}${from ? `&from_seq=${from}` : ""}`);
        if (res.statusCode !== 200) throw new Error(`list answered ${res.statusCode}`);
        const page = res.json() as { items: { seq: number; readable: boolean }[]; next_seq?: number };
        entries.push(...page.items);
        from = page.next_seq;
      } while (from !== undefined);
      if (entries.length !== stored) throw new Error(`listed ${entries.length} of ${stored}`);

      // Inspect each; replay some jobs; discard the rest (and the ones that would not replay).
      for (const [i, e] of entries.entries()) {
        const got = await call("GET", `/notifications/dlq/${e.seq}`);
        if (got.statusCode !== 200 || got.json().readable !== e.readable) throw new Error(`inspect ${e.seq}: ${got.statusCode}`);
        if (e.readable) seen.readable++;
        else seen.unreadable++;
        if (i % 3 === 0) {
          const r = await call("POST", `/notifications/dlq/${e.seq}/replay`);
          if (r.statusCode === 200) {
            seen.replayed++;
            continue;
          }
        }
        const d = await call("DELETE", `/notifications/dlq/${e.seq}`);
        if (d.statusCode !== 204) throw new Error(`discard ${e.seq}: ${d.statusCode}`);
      }
      const left = (await jsm.streams.info(Streams.dlq)).state.messages;
      if (left !== 0) throw new Error(`${left} entries could not be removed`);
    }),
    { numRuns: 1, endOnFailure: true },
  );
  t.ok(seen.unreadable > 0 && seen.readable > 0, `both kinds seen: ${JSON.stringify(seen)}`);
  t.ok(await monitor.ready(), "the DLQ monitor is still ready");
  t.pass(`${MESSAGES} arbitrary messages, ${seen.requests} requests, none answered 5xx`);
});
