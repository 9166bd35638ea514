import t from "tap";
import fc from "fast-check";
import {
  Status,
  canTransition,
  childTrace,
  decodeKeyToken,
  encodeKeyToken,
  languageCandidates,
  lockKey,
  parseTemplateKey,
  parseTraceparent,
  sendIdFor,
  templateKey,
} from "@notify/contracts";

const KV_KEY = /^[-/=.\w]+$/;

t.test("contracts - key tokens are valid KV keys and round-trip for any id", async (t) => {
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 128, unit: "binary" }), (id) => {
      const tok = encodeKeyToken(id);
      return KV_KEY.test(tok) && !tok.includes(".") && decodeKeyToken(tok) === id;
    }),
    { numRuns: 2000 },
  );
  t.equal(encodeKeyToken("O-1001"), "O-1001", "plain ids stay readable");
  t.equal(encodeKeyToken("a.b c:d").startsWith("="), true);
});

t.test("contracts - ids with lone UTF-16 surrogates keep their own key", async (t) => {
  // JSON text can carry "\ud800"; as UTF-8 it would become U+FFFD and share that id's key.
  const ids = ["\ud800", "\udfff", "\ufffd", "a\ud800b", "a\ufffdb", "\ud83c\udfab", "\udfab\ud83c"];
  const tokens = ids.map(encodeKeyToken);
  t.equal(new Set(tokens).size, ids.length, "no two ids share a token");
  t.same(tokens.map(decodeKeyToken), ids, "each token decodes to its id");
  t.ok(tokens.every((tok) => KV_KEY.test(tok) && !tok.includes(".")), "tokens stay valid KV key tokens");
  const key = (order_id: string) => sendIdFor({ event: "order.paid", order_id, channel: "wechat" });
  t.not(key("\ud800"), key("\ufffd"), "so their send ids differ");
  t.equal(encodeKeyToken("a.b"), "=" + Buffer.from("a.b").toString("base64url"), "well-formed ids keep their encoding");
});

t.test("contracts - lock keys and send ids are distinct per business key", async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom("order.paid", "ticket.redeemed"),
      fc.string({ minLength: 1, maxLength: 64, unit: "binary" }),
      fc.option(fc.string({ minLength: 1, maxLength: 64, unit: "binary" }), { nil: null }),
      fc.string({ minLength: 1, maxLength: 64, unit: "binary" }),
      (event, order, ticket, order2) => {
        const a = { event, order_id: order, ticket_id: ticket, channel: "wechat" };
        const b = { ...a, order_id: order2 };
        const k = lockKey(a);
        if (!KV_KEY.test(k) || k.startsWith(".") || k.endsWith(".")) return false;
        if (!/^snd_[0-9a-f]{32}$/.test(sendIdFor(a))) return false;
        return order === order2 ? sendIdFor(a) === sendIdFor(b) : sendIdFor(a) !== sendIdFor(b);
      },
    ),
    { numRuns: 2000 },
  );
  const base = { event: "order.paid", order_id: "O-1", channel: "wechat" };
  t.not(lockKey({ ...base, ticket_id: null }), lockKey({ ...base, ticket_id: "=" }), "no ticket differs from a ticket named '='");
  t.equal(lockKey({ ...base, ticket_id: null }), lockKey({ ...base, ticket_id: "" }));
  t.equal(sendIdFor({ ...base, ticket_id: null }), sendIdFor({ ...base }), "deterministic");
});

t.test("contracts - template keys and locale fallback", async (t) => {
  t.equal(templateKey("order.paid", "wechat", "en-US"), "order.paid.wechat.en-US");
  t.same(parseTemplateKey("order.paid.wechat.en-US"), { event: "order.paid", channel: "wechat", language: "en-US" });
  t.equal(parseTemplateKey("bad"), null);
  t.same(languageCandidates("en-US"), ["en-US", "en", "zh-CN"]);
  t.same(languageCandidates("zh-CN"), ["zh-CN", "zh"]);
  t.same(languageCandidates(undefined), ["zh-CN"]);
});

t.test("contracts - a record never moves backwards", async (t) => {
  t.ok(canTransition(undefined, Status.queued));
  t.ok(canTransition(Status.queued, Status.retrying));
  t.ok(canTransition(Status.retrying, Status.retrying));
  t.ok(canTransition(Status.retrying, Status.success));
  t.notOk(canTransition(Status.success, Status.queued), "late queued never hides success");
  t.notOk(canTransition(Status.success, Status.retrying));
  t.notOk(canTransition(Status.retrying, Status.queued));
  t.notOk(canTransition(Status.dead, Status.success));
  t.ok(canTransition(Status.dead, Status.queued, { replay: true }), "DLQ replay");
  t.notOk(canTransition(Status.success, Status.queued, { replay: true }), "success is never replayed");
  t.notOk(canTransition(Status.rejected, Status.queued, { replay: true }));
});

t.test("contracts - trace context", async (t) => {
  const a = childTrace();
  t.match(a.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const b = childTrace(a.traceparent);
  t.equal(b.traceId, a.traceId, "same trace");
  t.not(b.spanId, a.spanId, "new span");
  t.equal(parseTraceparent("garbage"), null);
  t.equal(parseTraceparent(`00-${"0".repeat(32)}-${"1".repeat(16)}-01`), null);
  t.not(childTrace("garbage").traceId, "", "malformed parent starts a new trace");
});

t.test("contracts - send_id stays sha256 of the lock key (ids already stored must keep matching)", async (t) => {
  const { createHash } = await import("node:crypto");
  for (const k of [
    { event: "order.paid", order_id: "O-1001", ticket_id: null, channel: "wechat" },
    { event: "ticket.refunded", order_id: "订单 7", ticket_id: "T-9", channel: "sms" },
  ]) {
    t.equal(sendIdFor(k), `snd_${createHash("sha256").update(lockKey(k)).digest("hex").slice(0, 32)}`, lockKey(k));
  }
  t.equal(sendIdFor({ event: "order.paid", order_id: "O-1001", ticket_id: null, channel: "wechat" }), "snd_194559710a0b68ce884fc9410137141e", "a known id");
});
