import { Ajv, type AnySchema, type Options } from "ajv";
import addFormatsModule from "ajv-formats";
import type { FastifySchemaCompiler } from "fastify";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

// Fastify's own defaults, less the two that hide an admin's mistake in a JSON body.
const shared: Options = { useDefaults: true, allErrors: false, strict: false, removeAdditional: false };

/**
 * One Ajv per kind of input, per app. A query string, path or header only carries text,
 * so "50" must become 50 there (Fastify's `coerceTypes: "array"`). A JSON body carries its
 * own types: coercing it would store `{"revision": "1"}` as 1 and `{"title": 123}` as
 * "123", and take from the gateway an event that the dispatcher, which validates without
 * coercion, refuses from NATS. A body of the wrong type is a 400 naming the field.
 * Unknown fields are reported, not dropped (`removeAdditional: false`).
 */
export function createValidatorCompiler(): FastifySchemaCompiler<AnySchema> {
  const body = addFormats(new Ajv({ ...shared, coerceTypes: false }));
  const text = addFormats(new Ajv({ ...shared, coerceTypes: "array" }));
  return ({ schema, httpPart }) => {
    const ajv = httpPart === "body" ? body : text;
    // A schema with an $id (the event envelope) is compiled once per Ajv; routes share it.
    const id = typeof schema === "object" && schema !== null && "$id" in schema ? (schema as { $id?: string }).$id : undefined;
    return (id !== undefined ? ajv.getSchema(id) : undefined) ?? ajv.compile(schema);
  };
}
