import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { errors } from "../schemas/common.js";
import { OrderParams, OrderQuery, OrderResponse } from "../schemas/send-search.js";

/** Everything sent for one order: the operator's first question about a complaint. */
const orderRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/notifications/orders/:order_id",
    {
      schema: {
        tags: ["Send log"],
        summary: "Every send for an order, each with its status history, newest first (SQL)",
        description: "An order nothing was recorded for answers 200 with no items (the send log may also be a few hundred ms behind).",
        params: OrderParams,
        querystring: OrderQuery,
        response: { 200: OrderResponse, ...errors(400, 503) },
      },
    },
    async (request) => {
      const { items, truncated } = await app.notify.search.order(request.params.order_id, request.query.limit);
      return { order_id: request.params.order_id, items, count: items.length, truncated };
    },
  );
};

export default orderRoutes;
