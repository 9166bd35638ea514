import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { errors, NoContent } from "../schemas/common.js";
import { DlqEntry, DlqListQuery, DlqListResponse, DlqParams, DlqReplayResponse } from "../schemas/dlq.js";

/** Dead-lettered sends, addressed by their DLQ stream sequence. */
const dlqRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/notifications/dlq",
    {
      schema: {
        tags: ["DLQ"],
        summary: "List dead-lettered sends (paginated by stream sequence)",
        querystring: DlqListQuery,
        response: { 200: DlqListResponse, ...errors(400) },
      },
    },
    async (request) => {
      const { channel, from_seq, limit = 50 } = request.query;
      return app.notify.dlq.list({ channel, fromSeq: from_seq === undefined ? undefined : Number(from_seq), limit });
    },
  );

  app.get(
    "/notifications/dlq/:seq",
    {
      schema: {
        tags: ["DLQ"],
        summary: "Inspect one dead-lettered send: the job, why it died, the current record",
        params: DlqParams,
        response: { 200: DlqEntry, ...errors(400, 404) },
      },
    },
    async (request) => app.notify.dlq.inspect(Number(request.params.seq)),
  );

  app.post(
    "/notifications/dlq/:seq/replay",
    {
      schema: {
        tags: ["DLQ"],
        summary: "Replay: record back to queued, job back on SENDS with a fresh attempt budget, entry removed (409 for an entry that is not a job)",
        params: DlqParams,
        response: { 200: DlqReplayResponse, ...errors(400, 404, 409) },
      },
    },
    async (request) => {
      const res = await app.notify.dlq.replay(Number(request.params.seq));
      app.notify.gatewayMetrics.dlqActions.inc({ action: "replay", channel: res.channel });
      request.log.info({ seq: res.seq, send_id: res.send_id, msg_id: res.msg_id }, "DLQ entry replayed");
      return res;
    },
  );

  app.delete(
    "/notifications/dlq/:seq",
    {
      schema: {
        tags: ["DLQ"],
        summary: "Discard a DLQ entry, a job or not (a job's record stays dead or failed)",
        params: DlqParams,
        response: { 204: NoContent, ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const { channel } = await app.notify.dlq.discard(Number(request.params.seq));
      app.notify.gatewayMetrics.dlqActions.inc({ action: "discard", channel });
      request.log.info({ seq: request.params.seq }, "DLQ entry discarded");
      return reply.code(204).send(null);
    },
  );
};

export default dlqRoutes;
