import t, { type Test } from "tap";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { parse } from "yaml";
import { EVENT_TYPES } from "@notify/contracts";
import { toOas30Schema } from "@notify/gateway";
import { appFor, startNats } from "./fixtures/helpers.js";
import { oas30DocumentSchema } from "./fixtures/oas30.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const nats = await startNats(t);

// The admin contract the gateway was first built to (OAS 3.0.3), verbatim.
const SEED = parse(`
paths:
  /notifications/templates:
    post:
      tags: [Notifications]
      summary: Upsert notification templates and channel config
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [event, channel, template_id]
              properties:
                event:
                  type: string
                  enum: [order.paid, order.cancelled, ticket.refunded, ticket.expired, ticket.redeemed]
                channel:
                  type: string
                  enum: [wechat]
                template_id:
                  type: string
                enabled:
                  type: boolean
                  default: true
                payload_schema:
                  type: object
    get:
      tags: [Notifications]
      summary: List configured notification templates
      responses:
        "200":
          description: Templates
  /notifications/preview:
    post:
      tags: [Notifications]
      summary: Render notification payload for QA
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [event, data]
              properties:
                event:
                  type: string
                data:
                  type: object
      responses:
        "200":
          description: Rendered payload
`) as { paths: Record<string, Record<string, SeedOp>> };

interface SeedSchema {
  type?: string;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, SeedSchema>;
}
interface SeedOp {
  tags: string[];
  summary: string;
  requestBody?: { required: boolean; content: Record<string, { schema: SeedSchema }> };
  responses?: Record<string, { description: string }>;
}
type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Op>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string }> };
  tags: { name: string }[];
};
type Op = {
  tags?: string[];
  summary?: string;
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: SeedSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
};

/** `ours` holds everything `seed` asks for: types, required fields, enum values, defaults. */
function contains(t: Test, ours: SeedSchema | undefined, seed: SeedSchema, at: string): void {
  if (!ours) return void t.fail(`${at} is missing`);
  if (seed.type) t.equal(ours.type, seed.type, `${at} type ${seed.type}`);
  for (const r of seed.required ?? []) t.ok(ours.required?.includes(r), `${at} requires ${r}`);
  if (seed.enum) t.ok(seed.enum.every((v) => ours.enum?.includes(v)), `${at} enum holds ${JSON.stringify(seed.enum)}`);
  if ("default" in seed) t.same(ours.default, seed.default, `${at} default ${JSON.stringify(seed.default)}`);
  for (const [name, p] of Object.entries(seed.properties ?? {})) contains(t, ours.properties?.[name], p, `${at}.${name}`);
}

t.test("gateway - the OpenAPI document validates as OAS 3.0.3", async (t) => {
  const app = await appFor(t, nats);
  const res = await app.inject({ method: "GET", url: "/openapi.json" });
  t.equal(res.statusCode, 200);
  const doc = res.json() as Doc;
  t.equal(doc.openapi, "3.0.3");

  const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));
  const validate = ajv.compile(oas30DocumentSchema);
  const ok = validate(doc);
  t.ok(ok, "the document matches the OAS 3.0 structure");
  if (!ok) t.comment(JSON.stringify(validate.errors?.slice(0, 10), null, 2));

  const declaredTags = new Set(doc.tags.map((x) => x.name));
  for (const [path, item] of Object.entries(doc.paths)) {
    const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    for (const [method, op] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      const pathParams = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
      t.same(pathParams.sort(), [...templated].sort(), `${where}: every {param} is a declared path parameter`);
      t.ok(op.tags?.length && op.tags.every((x) => declaredTags.has(x)), `${where}: tagged with a declared tag`);
      t.ok(op.summary, `${where}: has a summary`);
      const success = Object.keys(op.responses).filter((c) => c.startsWith("2"));
      t.ok(success.length > 0, `${where}: documents its success response`);
      for (const c of success) if (c !== "204") t.ok(op.responses[c]!.content, `${where}: ${c} has a schema`);
      for (const req of op.security ?? []) for (const scheme of Object.keys(req)) t.ok(doc.components.securitySchemes[scheme], `${where}: security scheme ${scheme} is defined`);
      if (path.startsWith("/notifications")) {
        t.same(op.security, [{ bearerAuth: [] }], `${where}: needs the bearer key`);
        t.ok(op.responses["401"], `${where}: documents 401`);
        t.ok(Object.keys(op.responses).some((c) => c.startsWith("4") && c !== "401"), `${where}: documents its other 4xx`);
      } else {
        t.equal(op.security, undefined, `${where}: open`);
      }
    }
  }
  t.same(doc.components.securitySchemes.bearerAuth, { type: "http", scheme: "bearer", description: "One of GATEWAY_API_KEYS" }, "bearer scheme (Swagger UI's Authorize button)");
});

t.test("gateway - the OpenAPI document contains the original contract's paths, required fields and enums", async (t) => {
  const app = await appFor(t, nats);
  const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as Doc;
  for (const [path, ops] of Object.entries(SEED.paths)) {
    for (const [method, seedOp] of Object.entries(ops)) {
      const where = `${method.toUpperCase()} ${path}`;
      const op = doc.paths[path]?.[method];
      if (!op) {
        t.fail(`${where} is missing`);
        continue;
      }
      t.same(op.tags, seedOp.tags, `${where}: tags`);
      t.equal(op.summary, seedOp.summary, `${where}: summary`);
      if (seedOp.requestBody) {
        t.equal(op.requestBody?.required, true, `${where}: body required`);
        for (const [type, media] of Object.entries(seedOp.requestBody.content)) contains(t, op.requestBody?.content[type]?.schema, media.schema, `${where} body`);
      }
      for (const [code, r] of Object.entries(seedOp.responses ?? {})) t.equal(op.responses[code]?.description, r.description, `${where}: ${code} "${r.description}"`);
    }
  }
  const body = doc.paths["/notifications/templates"]!.post!.requestBody!.content["application/json"]!.schema;
  t.same(body.properties!.event!.enum, [...EVENT_TYPES], "the event enum is exactly the five business events");
  t.same(body.required, ["event", "channel", "template_id"], "exactly the contract's required fields");
  const preview = doc.paths["/notifications/preview"]!.post!.requestBody!.content["application/json"]!.schema;
  t.same(preview.required, ["event", "data"]);
});

t.test("gateway - Swagger UI is served at /docs and reads the same document", async (t) => {
  const app = await appFor(t, nats);
  const page = await app.inject({ method: "GET", url: "/docs/" });
  t.equal(page.statusCode, 200);
  t.match(page.body, /swagger-ui/);
  const json = await app.inject({ method: "GET", url: "/docs/json" });
  const doc = await app.inject({ method: "GET", url: "/openapi.json" });
  t.same(json.json(), doc.json(), "/docs/json and /openapi.json are the same document");
});

t.test("gateway - the OAS 3.0 check has teeth: 3.1 / JSON Schema-only constructs are refused", async (t) => {
  const app = await appFor(t, nats);
  const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as Doc;
  const validate = addFormats(new Ajv({ allErrors: true, strict: false })).compile(oas30DocumentSchema);
  const withSchema = (schema: unknown) => {
    const d = structuredClone(doc);
    d.paths["/notifications/templates"]!.get!.responses["200"]!.content!["application/json"]!.schema = schema;
    return d;
  };
  t.notOk(validate(withSchema({ type: "null" })), "type null");
  t.notOk(validate(withSchema({ type: ["string", "null"] })), "type arrays");
  t.notOk(validate(withSchema({ type: "object", patternProperties: { "^a": {} } })), "patternProperties");
  t.notOk(validate(withSchema({ const: "x" })), "const");
  t.notOk(validate(withSchema({ type: "array" })), "an array without items");
  t.notOk(validate({ ...doc, openapi: "3.1.0" }), "another version");
  const noDescription = structuredClone(doc);
  delete (noDescription.paths["/healthz"]!.get!.responses["200"] as { description?: string }).description;
  t.notOk(validate(noDescription), "a response without a description");
  t.ok(validate(withSchema({ type: "string", nullable: true, enum: ["a"] })), "while 3.0 forms pass");

  t.same(
    toOas30Schema({ anyOf: [{ type: "string", maxLength: 3 }, { type: "null" }] }),
    { type: "string", maxLength: 3, nullable: true },
    "the gateway's pass turns a nullable union into nullable",
  );
  t.same(toOas30Schema({ enum: ["a", "b"] }), { enum: ["a", "b"], type: "string" }, "and gives a bare enum its type");
});
