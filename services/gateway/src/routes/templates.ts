import { hash } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { templateKey, type Template } from "@notify/contracts";
import { notFound } from "../errors.js";
import { ConditionalHeaders, IfMatchHeaders, NoContent, errors } from "../schemas/common.js";
import {
  RollbackBody,
  TemplateBody,
  TemplateHistoryResponse,
  TemplateListQuery,
  TemplateListResponse,
  TemplateParams,
  StoredTemplateSchema,
  TemplateWriteResponse,
} from "../schemas/templates.js";
import { parseRevisionHeader, type StoredTemplate } from "../services/template-store.js";
import {
  EXAMPLE_LANGUAGE,
  HISTORY_EXAMPLE,
  LIST_EXAMPLE,
  ROLLBACK_EXAMPLE,
  ROLLBACK_RESPONSE_EXAMPLE,
  STORED_EXAMPLE,
  UPSERT_EXAMPLE,
  WRITE_RESPONSE_EXAMPLE,
  withExample,
} from "../schemas/examples.js";

const etag = (revision: number) => `"${revision}"`;
const view = (s: StoredTemplate): Template & { revision: number } => ({ ...s.template, revision: s.revision });
/** Serialised template lists and their ETag, by the store's list array (one per cache version and filter). */
const listBodies = new WeakMap<readonly StoredTemplate[], { body: string; etag: string }>();

/** RFC 9110 If-None-Match: `*` or a list of (possibly weak) tags, compared weakly. */
function noneMatch(header: string | undefined, tag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === tag);
}

/** The admin contract's template routes plus get / delete / history of one template. */
const templateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/notifications/templates",
    {
      schema: {
        tags: ["Notifications"],
        summary: "Upsert notification templates and channel config",
        description:
          "Keyed by (event, channel, language). `payload_schema` must compile with ajv and every Handlebars expression in " +
          "`data`, `url` and `miniprogram.pagepath` must compile, else 400 naming the part. A literal keyword value must " +
          "satisfy WeChat's rule for its type (the prefix: thing ≤ 20 characters, amount, time, …), else 400 naming the field " +
          "and rule; `first`/`remark` keys and colours are stored but reported in `warnings` and never sent. Send the ETag you read as " +
          "`If-Match` to make sure nobody edited it meanwhile (412 otherwise); `If-None-Match: *` creates only. " +
          `The example writes language \`${EXAMPLE_LANGUAGE}\`, a key of its own that no traveller's locale selects: executing it ` +
          "unedited can never replace a live template.",
        headers: ConditionalHeaders,
        body: withExample(TemplateBody, UPSERT_EXAMPLE),
        response: {
          200: withExample(TemplateWriteResponse("Updated"), { ...WRITE_RESPONSE_EXAMPLE, created: false }),
          201: withExample(TemplateWriteResponse("Created"), WRITE_RESPONSE_EXAMPLE),
          ...errors(400, 412),
        },
      },
    },
    async (request, reply) => {
      const ifMatch = parseRevisionHeader("If-Match", request.headers["if-match"]);
      const ifNoneMatch = parseRevisionHeader("If-None-Match", request.headers["if-none-match"]);
      const saved = await app.notify.templates.upsert(request.body, { ifMatch, ifNoneMatch: ifNoneMatch === "*" }, request.apiKeyId);
      request.log.info({ key: templateKey(saved.template.event, saved.template.channel, saved.template.language), revision: saved.revision, created: saved.created }, "template saved");
      return reply
        .code(saved.created ? 201 : 200)
        .header("etag", etag(saved.revision))
        .send({ template: view(saved), created: saved.created, warnings: saved.warnings });
    },
  );

  app.get(
    "/notifications/templates",
    {
      schema: {
        tags: ["Notifications"],
        summary: "List configured notification templates",
        description:
          "Served from the gateway's watched view of the templates bucket. The ETag names the list's content: send it back " +
          "as `If-None-Match` and an unchanged list answers 304 with no body.",
        querystring: TemplateListQuery,
        response: { 200: withExample(TemplateListResponse, LIST_EXAMPLE), 304: Type.Null({ description: "Not modified: the list is the one the If-None-Match tag names" }), ...errors(400) },
      },
    },
    async (request, reply) => {
      const stored = await app.notify.templates.list(request.query);
      // The cached list is one array per (cache version, filter): serialise it once. The
      // response schema's serialiser checks every data field against a union per request,
      // which cost the route most of its throughput.
      let cached = listBodies.get(stored);
      if (cached === undefined) {
        const items = stored.map(view);
        const body = String(reply.serializeInput({ items, count: items.length }, "200"));
        cached = { body, etag: `"${hash("sha256", body, "base64url").slice(0, 22)}"` };
        listBodies.set(stored, cached);
      }
      void reply.header("etag", cached.etag);
      if (noneMatch(request.headers["if-none-match"], cached.etag)) return reply.code(304).send(null);
      const body = cached.body;
      return reply.type("application/json; charset=utf-8").send(body as never);
    },
  );

  app.get(
    "/notifications/templates/:event/:channel/:language",
    {
      schema: {
        tags: ["Templates"],
        summary: "Get one template (ETag = its revision)",
        params: TemplateParams,
        response: { 200: withExample(StoredTemplateSchema, STORED_EXAMPLE), ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const { event, channel, language } = request.params;
      const key = templateKey(event, channel, language);
      const stored = await app.notify.templates.get(key);
      if (!stored) throw notFound(`no template ${key}`);
      return reply.header("etag", etag(stored.revision)).send(view(stored));
    },
  );

  app.delete(
    "/notifications/templates/:event/:channel/:language",
    {
      schema: {
        tags: ["Templates"],
        summary: "Delete one template (If-Match honoured); events then fall back or are recorded skipped",
        params: TemplateParams,
        headers: IfMatchHeaders,
        response: { 204: NoContent, ...errors(400, 404, 412) },
      },
    },
    async (request, reply) => {
      const { event, channel, language } = request.params;
      const key = templateKey(event, channel, language);
      await app.notify.templates.remove(key, { ifMatch: parseRevisionHeader("If-Match", request.headers["if-match"]) });
      request.log.info({ key }, "template deleted");
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/notifications/templates/:event/:channel/:language/rollback",
    {
      schema: {
        tags: ["Templates"],
        summary: "Roll one template back to a revision of its history (If-Match honoured)",
        description:
          "Writes the content of `revision` (a PUT revision from the history) as a new revision, recompiled with today's checks; " +
          "the history then shows who did it (`updated_by`) and `rolled_back_to`. Send the ETag you read as `If-Match` (412 if the " +
          "template moved on); without it the rollback applies to whatever revision is current, still refusing a concurrent edit. " +
          "404: no such template or the revision is not in the kept history; 409: that revision is a delete marker or no longer passes the checks.",
        params: TemplateParams,
        headers: IfMatchHeaders,
        body: withExample(RollbackBody, ROLLBACK_EXAMPLE),
        response: { 200: withExample(TemplateWriteResponse("Rolled back: the new revision"), ROLLBACK_RESPONSE_EXAMPLE), ...errors(400, 404, 409, 412) },
      },
    },
    async (request, reply) => {
      const { event, channel, language } = request.params;
      const key = templateKey(event, channel, language);
      const ifMatch = parseRevisionHeader("If-Match", request.headers["if-match"]);
      const saved = await app.notify.templates.rollback(key, request.body.revision, { ifMatch }, request.apiKeyId);
      request.log.info({ key, revision: saved.revision, rolled_back_to: request.body.revision }, "template rolled back");
      return reply.header("etag", etag(saved.revision)).send({ template: view(saved), created: false, warnings: saved.warnings });
    },
  );

  app.get(
    "/notifications/templates/:event/:channel/:language/history",
    {
      schema: {
        tags: ["Templates"],
        summary: "Edit history of one template (the KV history)",
        params: TemplateParams,
        response: { 200: withExample(TemplateHistoryResponse, HISTORY_EXAMPLE), ...errors(400, 404) },
      },
    },
    async (request) => {
      const { event, channel, language } = request.params;
      const key = templateKey(event, channel, language);
      const items = await app.notify.templates.history(key);
      if (items.length === 0) throw notFound(`no template ${key}`);
      return { key, items };
    },
  );
};

export default templateRoutes;
