import t from "tap";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { EventEnvelopeSchema, TemplateInputSchema } from "@notify/contracts";
import { paidEvent } from "../support/fixtures.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const read = (f: string) => JSON.parse(readFileSync(new URL(`../../schemas/${f}`, import.meta.url), "utf8")) as Record<string, unknown>;

t.test("contracts - the published JSON Schemas match the TypeBox values (run npm run schemas)", async (t) => {
  const { $schema, ...envelope } = read("event-envelope.schema.json");
  t.equal($schema, "http://json-schema.org/draft-07/schema#");
  t.same(envelope, JSON.parse(JSON.stringify(EventEnvelopeSchema)));
  const { $schema: _s, ...tpl } = read("template-input.schema.json");
  t.same(tpl, JSON.parse(JSON.stringify(TemplateInputSchema)));
});

t.test("contracts - a publisher validating with the file accepts a good event and refuses a bad one", async (t) => {
  const validate = addFormats(new Ajv({ strict: false })).compile(read("event-envelope.schema.json"));
  t.ok(validate(paidEvent()), "example event is valid");
  t.notOk(validate({ ...paidEvent(), occurred_at: "yesterday" }));
  t.notOk(validate({ ...paidEvent(), event: "order.shipped" }));
});

t.test("contracts - recipient.phone is optional E.164: old envelopes stay valid, bad numbers are refused", async (t) => {
  const validate = addFormats(new Ajv({ strict: false })).compile(read("event-envelope.schema.json"));
  const withPhone = (phone: unknown) => {
    const e = paidEvent();
    return { ...e, recipient: { ...e.recipient, phone } };
  };
  t.ok(validate(paidEvent()), "an envelope without phone (the old contract) is valid");
  t.ok(validate(withPhone("+8613812345678")));
  t.ok(validate(withPhone("+14155550123")));
  for (const bad of ["13812345678", "+0861381234567", "+86 138 1234 5678", "+86-13812345678", "+123456", "+1234567890123456", "", 8613812345678, null, "+8613812345678\n"]) {
    t.notOk(validate(withPhone(bad)), `refused: ${JSON.stringify(bad)}`);
  }
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), (s) => validate(withPhone(s)) === /^\+[1-9][0-9]{6,14}$/.test(s)),
    { numRuns: 1000 },
  );
});
