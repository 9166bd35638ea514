// Property-based tests (fast-check) for the two places where publisher input meets the
// system's invariants: the envelope parser and the business-key encoding.
import t from "tap";
import fc from "fast-check";
import { connect } from "@nats-io/transport-node";
import { EVENT_TYPES, MAX_ENVELOPE_BYTES, decodeKeyToken, encodeKeyToken, lockKey, sendIdFor, type EventEnvelope } from "@notify/contracts";
import { parseEnvelope } from "@notify/dispatcher";
import { ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";

const enc = new TextEncoder();
const KV_KEY = /^[-/=.\w]+$/;
const REASONS = new Set(["too_large", "not_json", "invalid", "subject_mismatch"]);

/** Any UTF-16 code unit, lone surrogates included (JSON's "\ud800" escapes produce them). */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
/** Characters that have broken key schemes before: NATS tokens, separators, surrogates. */
const tricky = fc.constantFrom(".", "..", ">", "*", " ", ":", "=", "/", "\\", "\t", "\n", "\u0000", "\ud800", "\udc00", "\ufffd", "🎫", "订", "-", "_");
const businessId = fc.string({ unit: fc.oneof(codeUnit, tricky, fc.constantFrom("A", "b", "1")), minLength: 1, maxLength: 64 });
/** Up to the envelope's 128 code points, four-byte characters included. */
const longId = fc.string({ unit: "binary", minLength: 1, maxLength: 128 });

const envelope: fc.Arbitrary<EventEnvelope> = fc.record({
  id: fc.stringMatching(/^[\w.:-]{1,64}$/),
  event: fc.constantFrom(...EVENT_TYPES),
  occurred_at: fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString()),
  order_id: fc.oneof(businessId, longId),
  ticket_id: fc.option(fc.oneof(businessId, longId), { nil: null }),
  recipient: fc.record({ openid: fc.stringMatching(/^[\w-]{1,64}$/), locale: fc.constantFrom("zh-CN", "en-US", "en", "fr") }),
  data: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
});

const bytesOf = (v: unknown) => enc.encode(JSON.stringify(v));

t.test("properties - parseEnvelope never throws and always says why", async (t) => {
  const check = (data: Uint8Array, subject: string) => {
    const r = parseEnvelope(data, subject);
    return r.ok ? typeof r.envelope === "object" && r.envelope !== null : REASONS.has(r.reason) && r.message.length > 0;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => check(b, "events.order.paid")), { numRuns: 3000 });
  fc.assert(fc.property(fc.jsonValue(), fc.constantFrom(...EVENT_TYPES), (v, e) => check(bytesOf(v), `events.${e}`)), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ unit: codeUnit, maxLength: 300 }), (s) => check(enc.encode(s), "events.order.paid")), { numRuns: 2000 });
  t.pass("random bytes, JSON values and UTF-16 text: a result with a reason every time");
});

t.test("properties - every valid envelope parses back unchanged", async (t) => {
  fc.assert(
    fc.property(envelope, (e) => {
      const r = parseEnvelope(bytesOf(e), `events.${e.event}`);
      return r.ok && JSON.stringify(r.envelope) === JSON.stringify(e);
    }),
    { numRuns: 2000 },
  );
  t.pass("2,000 generated envelopes accepted as published");
});

t.test("properties - one broken field is rejected as invalid, the wrong subject as a mismatch, size before anything", async (t) => {
  const breakages: [string, (e: EventEnvelope) => unknown][] = [
    ["no id", ({ id: _, ...rest }) => rest],
    ["id with a space", (e) => ({ ...e, id: `${e.id} x` })],
    ["unknown event", (e) => ({ ...e, event: `${e.event}.x` })],
    ["order_id not a string", (e) => ({ ...e, order_id: 42 })],
    ["order_id empty", (e) => ({ ...e, order_id: "" })],
    ["order_id over 128", (e) => ({ ...e, order_id: "x".repeat(129) })],
    ["ticket_id a number", (e) => ({ ...e, ticket_id: 7 })],
    ["occurred_at not a date", (e) => ({ ...e, occurred_at: "soon" })],
    ["openid with a dot", (e) => ({ ...e, recipient: { ...e.recipient, openid: "o.x" } })],
    ["recipient extra field", (e) => ({ ...e, recipient: { ...e.recipient, admin: true } })],
    ["data an array", (e) => ({ ...e, data: [] })],
    ["data null", (e) => ({ ...e, data: null })],
  ];
  for (const [name, breakIt] of breakages) {
    fc.assert(
      fc.property(envelope, (e) => {
        const r = parseEnvelope(bytesOf(breakIt(e)), `events.${e.event}`);
        return !r.ok && r.reason === "invalid";
      }),
      { numRuns: 200 },
    );
    t.pass(`${name}: invalid`);
  }
  fc.assert(
    fc.property(envelope, fc.constantFrom(...EVENT_TYPES), (e, other) => {
      const r = parseEnvelope(bytesOf(e), `events.${other}`);
      return other === e.event ? r.ok : !r.ok && r.reason === "subject_mismatch";
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4096 }), fc.uint8Array({ maxLength: 64 }), (extra, head) => {
      const b = new Uint8Array(MAX_ENVELOPE_BYTES + extra);
      b.set(head);
      const r = parseEnvelope(b, "events.order.paid");
      return !r.ok && r.reason === "too_large";
    }),
    { numRuns: 100 },
  );
  t.pass("subject mismatch and size limit");
});

t.test("properties - key tokens: valid KV key characters, no dots, round-trip for any UTF-16 id", async (t) => {
  fc.assert(
    fc.property(fc.oneof(businessId, longId), (id) => {
      const tok = encodeKeyToken(id);
      return /^[\w=-]+$/.test(tok) && decodeKeyToken(tok) === id;
    }),
    { numRuns: 5000 },
  );
  // Round-trip means injective; check the cases that used to share a token directly.
  t.not(encodeKeyToken("\ud800"), encodeKeyToken("\ufffd"), "a lone surrogate and U+FFFD differ");
  t.not(encodeKeyToken("\udc00x"), encodeKeyToken("\ud800x"), "a lone low surrogate and a lone high one differ");
  t.equal(encodeKeyToken("O-1001"), "O-1001", "plain ids stay readable");
});

t.test("properties - lock keys and send ids: one per business key, always a valid KV key", async (t) => {
  const key = fc.record({
    event: fc.constantFrom(...EVENT_TYPES),
    order_id: fc.oneof(businessId, longId),
    ticket_id: fc.option(fc.oneof(businessId, longId), { nil: null }),
    channel: fc.constantFrom("wechat", "sms"),
  });
  const same = (a: typeof key extends fc.Arbitrary<infer K> ? K : never, b: typeof a) =>
    a.event === b.event && a.order_id === b.order_id && (a.ticket_id || null) === (b.ticket_id || null) && a.channel === b.channel;
  fc.assert(
    fc.property(key, key, (a, b) => {
      const k = lockKey(a);
      if (!KV_KEY.test(k) || k.startsWith(".") || k.endsWith(".") || k.includes("..") || k.split(".").length !== 5) return false;
      if (!/^snd_[0-9a-f]{32}$/.test(sendIdFor(a)) || sendIdFor(a) !== sendIdFor({ ...a })) return false;
      return same(a, b) ? lockKey(a) === lockKey(b) && sendIdFor(a) === sendIdFor(b) : lockKey(a) !== lockKey(b) && sendIdFor(a) !== sendIdFor(b);
    }),
    { numRuns: 5000 },
  );
  // Pairs that differ by one character class only.
  fc.assert(
    fc.property(key, tricky, tricky, (a, x, y) => {
      const b = { ...a, order_id: a.order_id + x };
      const c = { ...a, order_id: a.order_id + y };
      return x === y ? sendIdFor(b) === sendIdFor(c) : sendIdFor(b) !== sendIdFor(c);
    }),
    { numRuns: 2000 },
  );
  t.pass("distinct business keys never share a lock key or a send id");
});

t.test("properties - nats-server accepts every lock key the encoding produces", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  const { buckets } = await ensureTopology(nc);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...EVENT_TYPES), fc.oneof(businessId, longId), fc.option(longId, { nil: null }), async (event, order_id, ticket_id) => {
      const k = lockKey({ event, order_id, ticket_id, channel: "wechat" });
      await buckets.locks.put(k, enc.encode("x"));
      return (await buckets.locks.get(k))?.key === k;
    }),
    { numRuns: 150 },
  );
  t.pass("150 generated keys, up to two 128-character four-byte ids, stored and read back");
});
