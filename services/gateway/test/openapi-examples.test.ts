// Every example in the generated OpenAPI document is valid against its schema, and the
// examples are real requests: the preview example answers 200 (and the documented answer)
// from a running gateway with the seeded templates, and the upsert example cannot replace
// a live template.
import t from "tap";
import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { API_KEY, appFor, startNats } from "./fixtures/helpers.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const nats = await startNats(t);
const seeded = JSON.parse(readFileSync(new URL("../../../scripts/example-templates.json", import.meta.url), "utf8")) as Record<string, unknown>[];

type Json = Record<string, any>;
interface Found {
  where: string;
  schema: Json;
  example: unknown;
}

/** Every example the document holds, each with the schema it illustrates. */
function examplesOf(doc: Json): Found[] {
  const out: Found[] = [];
  const inSchema = (schema: unknown, where: string) => {
    if (typeof schema !== "object" || schema === null) return;
    const s = schema as Json;
    if ("example" in s) out.push({ where: `${where} (schema)`, schema: s, example: s.example });
    for (const k of ["items", "not", "additionalProperties"]) inSchema(s[k], `${where}.${k}`);
    for (const k of ["anyOf", "oneOf", "allOf"]) (s[k] ?? []).forEach((x: unknown, i: number) => inSchema(x, `${where}.${k}[${i}]`));
    for (const [name, p] of Object.entries(s.properties ?? {})) inSchema(p, `${where}.${name}`);
  };
  const inMedia = (content: Json | undefined, where: string) => {
    for (const [type, media] of Object.entries(content ?? {}) as [string, Json][]) {
      if ("example" in media) out.push({ where: `${where} ${type}`, schema: media.schema, example: media.example });
      for (const [name, ex] of Object.entries(media.examples ?? {}) as [string, Json][]) out.push({ where: `${where} ${type} examples.${name}`, schema: media.schema, example: ex.value });
      inSchema(media.schema, `${where} ${type}`);
    }
  };
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json) as [string, Json][]) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const p of op.parameters ?? []) {
        if ("example" in p) out.push({ where: `${at} ${p.in} ${p.name}`, schema: p.schema, example: p.example });
        inSchema(p.schema, `${at} ${p.in} ${p.name}`);
      }
      inMedia(op.requestBody?.content, `${at} body`);
      for (const [code, r] of Object.entries(op.responses ?? {}) as [string, Json][]) inMedia(r.content, `${at} ${code}`);
    }
  }
  for (const [name, s] of Object.entries(doc.components?.schemas ?? {})) inSchema(s, `components.${name}`);
  return out;
}

const mediaExample = (doc: Json, path: string, method: string, code?: string): unknown => {
  const op = doc.paths[path][method];
  const content = code ? op.responses[code].content : op.requestBody.content;
  return content["application/json"].example;
};

t.test("openapi - every example validates against its schema (Ajv, OAS 3.0 nullable)", async (t) => {
  const app = await appFor(t, nats);
  const doc = app.swagger() as Json;
  const found = examplesOf(doc);
  // OAS 3.0 schemas: `nullable` is Ajv's own keyword; `example` is an annotation.
  const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));
  ajv.addKeyword("example");
  for (const f of found) {
    const validate: ValidateFunction = ajv.compile(f.schema);
    t.ok(validate(f.example), `${f.where}: the example is valid`);
    if (validate.errors) t.comment(JSON.stringify(validate.errors.slice(0, 5)));
  }
  // Every body a client sends and the answers of the template and preview routes show a real example.
  const required: [string, string, string?][] = [
    ["/notifications/templates", "post"],
    ["/notifications/templates", "post", "200"],
    ["/notifications/templates", "post", "201"],
    ["/notifications/templates", "get", "200"],
    ["/notifications/templates/{event}/{channel}/{language}", "get", "200"],
    ["/notifications/templates/{event}/{channel}/{language}/rollback", "post"],
    ["/notifications/templates/{event}/{channel}/{language}/rollback", "post", "200"],
    ["/notifications/templates/{event}/{channel}/{language}/history", "get", "200"],
    ["/notifications/preview", "post"],
    ["/notifications/preview", "post", "200"],
    ["/notifications/events", "post"],
    ["/notifications/events", "post", "202"],
  ];
  for (const [path, method, code] of required) {
    t.ok(mediaExample(doc, path, method, code) !== undefined, `${method.toUpperCase()} ${path} ${code ?? "body"}: has an example`);
  }
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json) as [string, Json][]) {
      if (op.requestBody) t.ok(op.requestBody.content["application/json"].example !== undefined, `${method.toUpperCase()} ${path}: every request body has an example`);
    }
  }
  t.ok(found.length >= required.length, `${found.length} examples checked`);
  const placeholders = JSON.stringify(found.map((f) => f.example));
  // Swagger's placeholder is the value "string"; a JSON Schema's `"type":"string"` is content.
  t.notMatch(placeholders, /(?<!"type":)"string"/, "no placeholder values");

  // The upsert example is the seeded order.paid zh-CN template under an example key of its own.
  const upsert = mediaExample(doc, "/notifications/templates", "post") as Json;
  const live = seeded.find((s) => s.event === "order.paid" && s.language === "zh-CN")!;
  t.same({ ...upsert, language: "zh-CN", enabled: undefined }, { ...live, enabled: undefined }, "the upsert example is the seeded order.paid zh-CN template");
  t.equal(upsert.language, "zh-CN-example", "under its own language tag");
});

t.test("openapi - the examples executed against a running gateway with the seeded templates", async (t) => {
  const app = await appFor(t, nats);
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  const doc = app.swagger() as Json;
  const http = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, etag: res.headers.get("etag"), body: (await res.json()) as Json };
  };
  for (const s of seeded) t.equal((await http("POST", "/notifications/templates", s)).status, 201, `seeded ${s.event} ${s.language}`);
  const liveBefore = await http("GET", "/notifications/templates/order.paid/wechat/zh-CN");

  const preview = await http("POST", "/notifications/preview", mediaExample(doc, "/notifications/preview", "post"));
  t.equal(preview.status, 200, "the preview example answers 200");
  const documented = mediaExample(doc, "/notifications/preview", "post", "200") as Json;
  const strip = (b: Json) => ({ ...b, template: { ...b.template, revision: 0 } });
  t.same(strip(preview.body), strip(documented), "and the documented answer is what it answers");

  const upsert = mediaExample(doc, "/notifications/templates", "post");
  const first = await http("POST", "/notifications/templates", upsert);
  t.equal(first.status, 201, "the upsert example creates its own key");
  t.equal(first.body.template.language, "zh-CN-example");
  t.equal((await http("POST", "/notifications/templates", upsert)).status, 200, "executed again: it updates only that key");
  const liveAfter = await http("GET", "/notifications/templates/order.paid/wechat/zh-CN");
  t.equal(liveAfter.etag, liveBefore.etag, "the live order.paid zh-CN template is untouched");
  t.same(liveAfter.body, liveBefore.body);

  const event = await http("POST", "/notifications/events", mediaExample(doc, "/notifications/events", "post"));
  t.equal(event.status, 202, "the event example is accepted");
});
