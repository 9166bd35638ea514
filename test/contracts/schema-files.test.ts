import t from "tap";
import { readFileSync } from "node:fs";
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
