/**
 * @fastify/swagger already turns JSON Schema `patternProperties`, `const` and `$id` into
 * their OpenAPI 3.0 forms. This pass does the rest so the document is valid OAS 3.0.3:
 * `anyOf [X, {type: null}]` becomes `X` + `nullable`, and an `enum` without a `type`
 * (TypeBox's `Type.Enum`) gets the type of its values, as the original admin contract spells it.
 */
type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export function toOas30Schema(schema: unknown): unknown {
  if (!isObj(schema)) return schema;
  let s: Json = { ...schema };

  for (const k of ["anyOf", "oneOf"] as const) {
    const list = s[k];
    if (!Array.isArray(list)) continue;
    const nonNull = list.filter((x) => !(isObj(x) && x.type === "null"));
    if (nonNull.length !== list.length) {
      const { [k]: _drop, ...rest } = s;
      s = nonNull.length === 1 && isObj(nonNull[0]) ? { ...rest, ...nonNull[0], nullable: true } : { ...rest, [k]: nonNull, nullable: true };
    }
  }
  if (Array.isArray(s.enum) && s.type === undefined) {
    const types = new Set(s.enum.map((v) => (v === null ? "null" : typeof v)));
    const only = types.size === 1 ? [...types][0] : undefined;
    if (only === "string" || only === "number" || only === "boolean") s.type = only;
  }
  for (const k of ["anyOf", "oneOf", "allOf"] as const) {
    if (Array.isArray(s[k])) s[k] = (s[k] as unknown[]).map(toOas30Schema);
  }
  for (const k of ["items", "not", "additionalProperties"] as const) {
    if (isObj(s[k])) s[k] = toOas30Schema(s[k]);
  }
  if (isObj(s.properties)) {
    s.properties = Object.fromEntries(Object.entries(s.properties).map(([name, p]) => [name, toOas30Schema(p)]));
  }
  return s;
}

function mapContent(content: unknown): unknown {
  if (!isObj(content)) return content;
  return Object.fromEntries(
    Object.entries(content).map(([type, media]) => [type, isObj(media) && media.schema ? { ...media, schema: toOas30Schema(media.schema) } : media]),
  );
}

/** Walks every place an OAS 3.0 document holds a schema. */
export function toOas30Document<T>(doc: T): T {
  const d = { ...(doc as Json) };
  if (isObj(d.paths)) {
    d.paths = Object.fromEntries(
      Object.entries(d.paths).map(([p, item]) => {
        if (!isObj(item)) return [p, item];
        const ops = Object.fromEntries(
          Object.entries(item).map(([method, op]) => {
            if (!isObj(op)) return [method, op];
            const o: Json = { ...op };
            if (Array.isArray(o.parameters)) {
              o.parameters = o.parameters.map((prm) => (isObj(prm) && prm.schema ? { ...prm, schema: toOas30Schema(prm.schema) } : prm));
            }
            if (isObj(o.requestBody)) o.requestBody = { ...o.requestBody, content: mapContent(o.requestBody.content) };
            if (isObj(o.responses)) {
              o.responses = Object.fromEntries(
                Object.entries(o.responses).map(([code, r]) => [code, isObj(r) && r.content ? { ...r, content: mapContent(r.content) } : r]),
              );
            }
            return [method, o];
          }),
        );
        return [p, ops];
      }),
    );
  }
  if (isObj(d.components) && isObj(d.components.schemas)) {
    d.components = {
      ...d.components,
      schemas: Object.fromEntries(Object.entries(d.components.schemas).map(([n, s]) => [n, toOas30Schema(s)])),
    };
  }
  return d as T;
}
