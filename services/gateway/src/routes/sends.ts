import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { badRequest, notFound } from "../errors.js";
import { errors } from "../schemas/common.js";
import { HistoryQuery, SendLogResponse, SendLookupQuery, SendParams } from "../schemas/sends.js";
import { SendSearchQuery, SendSearchResponse, StatsQuerySchema, StatsResponse } from "../schemas/send-search.js";

const HOUR = 3600_000;
/** Longest range per interval: bounds the answer (744 hourly or 400 daily buckets). */
const MAX_RANGE = { hour: 31 * 24 * HOUR, day: 400 * 24 * HOUR } as const;

/**
 * The send log. From KV (the system of record, always current): one record with its
 * status history by send_id or by business key. From SQL (the projected read model, a
 * few hundred ms behind): search with filters and pages, and counts.
 */
const sendRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/notifications/sends/:send_id",
    {
      schema: {
        tags: ["Send log"],
        summary: "A send record and its status history",
        params: SendParams,
        querystring: HistoryQuery,
        response: { 200: SendLogResponse, ...errors(400, 404) },
      },
    },
    async (request) => {
      const entry = await app.notify.sends.byId(request.params.send_id, { withHistory: request.query.history !== false });
      if (!entry) throw notFound(`no send ${request.params.send_id}`);
      return entry;
    },
  );

  app.get(
    "/notifications/sends",
    {
      schema: {
        tags: ["Send log"],
        summary: "Search the send log (SQL): filters, newest first, keyset pages",
        description:
          "Every filter is optional and they combine with AND. Time ranges are inclusive at `*_from`, exclusive at `*_to`. " +
          "Pages: pass `next_cursor` back as `cursor` (stable while new sends arrive). An unknown parameter is a 400 naming it. " +
          "503 when no send log database is configured or it is unreachable. The look-up by business key moved to " +
          "`GET /notifications/sends/by-key`.",
        querystring: SendSearchQuery,
        response: { 200: SendSearchResponse, ...errors(400, 503) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      const page = await app.notify.search.list(filter, { limit, cursor });
      return { items: page.items, count: page.items.length, next_cursor: page.next_cursor };
    },
  );

  app.get(
    "/notifications/sends/stats",
    {
      schema: {
        tags: ["Send log"],
        summary: "Counts by status × event × channel per hour or day (SQL)",
        querystring: StatsQuerySchema,
        response: { 200: StatsResponse, ...errors(400, 503) },
      },
    },
    async (request) => {
      const { interval, by } = request.query;
      const to = request.query.to ?? new Date().toISOString();
      const from = request.query.from ?? new Date(Date.parse(to) - 24 * HOUR).toISOString();
      const span = Date.parse(to) - Date.parse(from);
      if (!(span > 0)) throw badRequest("from must be before to", { field: "from" });
      if (span > MAX_RANGE[interval]) throw badRequest(`a range by ${interval} spans at most ${MAX_RANGE[interval] / (24 * HOUR)} days`, { field: "from" });
      const buckets = await app.notify.search.stats({ from, to, interval, by });
      return { from, to, interval, by, buckets, total: buckets.reduce((n, b) => n + b.count, 0) };
    },
  );

  app.get(
    "/notifications/sends/by-key",
    {
      schema: {
        tags: ["Send log"],
        summary: "Look a send up by its business key (event, order_id, ticket_id?, channel), from KV",
        querystring: SendLookupQuery,
        response: { 200: SendLogResponse, ...errors(400, 404) },
      },
    },
    async (request) => {
      const { event, order_id, ticket_id, channel = "wechat", history } = request.query;
      const entry = await app.notify.sends.byBusinessKey({ event, order_id, ticket_id: ticket_id ?? null, channel }, { withHistory: history !== false });
      if (!entry) throw notFound(`no send for ${event} order ${order_id}${ticket_id ? ` ticket ${ticket_id}` : ""} on ${channel}`);
      return entry;
    },
  );
};

export default sendRoutes;
