#!/usr/bin/env node
// Writes the publisher contract (schemas/*.schema.json) from the TypeBox values the
// dispatcher and gateway validate with. Run after `npm run build`: npm run schemas.
import { writeFileSync } from "node:fs";
import { EventEnvelopeSchema, TemplateInputSchema } from "../libs/contracts/dist/index.js";

const out = [
  ["schemas/event-envelope.schema.json", EventEnvelopeSchema],
  ["schemas/template-input.schema.json", TemplateInputSchema],
];
for (const [file, schema] of out) {
  writeFileSync(new URL(`../${file}`, import.meta.url), JSON.stringify({ $schema: "http://json-schema.org/draft-07/schema#", ...schema }, null, 2) + "\n");
  console.log(`wrote ${file}`);
}
