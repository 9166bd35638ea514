import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { notFound } from "../errors.js";
import { errors } from "../schemas/common.js";
import { HistoryQuery, SendLogResponse, SendLookupQuery, SendParams } from "../schemas/sends.js";

/** The send log: one record with its status history, by send_id or by business key. */
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
        summary: "Look a send up by its business key (event, order_id, ticket_id?, channel)",
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
