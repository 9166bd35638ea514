import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { badRequest } from "../errors.js";

/**
 * JSON bodies, parsed like Fastify's own parser (`__proto__` and `constructor.prototype`
 * refused: prototype pollution) but with a 400 that says why: the refused key as
 * `details.field`, or the syntax error and its position. Fastify's parser answers
 * "Body is not valid JSON" for all three.
 */
async function jsonBody(app: FastifyInstance): Promise<void> {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(badRequest("the body is empty but content-type is application/json"), undefined);
    try {
      // The reviver only when a refused key can be there: JSON.parse alone is faster.
      done(null, /__proto__|constructor/.test(text) ? JSON.parse(text, refuseProtoKeys) : JSON.parse(text));
    } catch (err) {
      if (err instanceof SyntaxError) return done(badRequest(`the body is not valid JSON: ${syntaxReason(err)}`), undefined);
      // The reviver recurses per level: a RangeError is a body nested deeper than the stack.
      done(err instanceof RangeError ? badRequest("the body is nested too deeply") : (err as Error), undefined);
    }
  });
}

/**
 * V8 quotes up to ~30 characters of the text in some messages (`Unexpected token '+',
 * "{"phone":+861381234"... is not valid JSON`): a phone number or a key, which the request's
 * log line would then carry as its reason. Only the part that names the place is kept.
 */
function syntaxReason(err: SyntaxError): string {
  const quoted = err.message.indexOf(', "');
  return quoted >= 0 ? err.message.slice(0, quoted) : err.message;
}

function refuseProtoKeys(key: string, value: unknown): unknown {
  if (key === "__proto__") throw forbidden("__proto__");
  if (key === "constructor" && typeof value === "object" && value !== null && Object.hasOwn(value, "prototype")) throw forbidden("constructor.prototype");
  return value;
}

const forbidden = (field: string) => badRequest(`the body holds the key "${field}", which is refused (prototype pollution)`, { field });

export default fp(jsonBody, { name: "json-body", fastify: "5.x" });
