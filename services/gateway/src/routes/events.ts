import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { EventEnvelopeSchema, MAX_ENVELOPE_BYTES, sendIdFor } from "@notify/contracts";
import { errors } from "../schemas/common.js";
import { PublishResponse, TraceHeaders } from "../schemas/events.js";
import { announcedSends, publishEvent } from "../services/events.js";
import { EVENT_EXAMPLE, withExample } from "../schemas/examples.js";

/** HTTP ingress for publishers without a NATS client (and for k6). */
const eventRoutes: FastifyPluginAsyncTypebox<{ channels: readonly string[] }> = async (app, opts) => {
  const exampleSendId = sendIdFor({ ...EVENT_EXAMPLE, channel: "wechat" });
  app.post(
    "/notifications/events",
    {
      bodyLimit: MAX_ENVELOPE_BYTES,
      schema: {
        tags: ["Events"],
        summary: "Publish a business event onto events.<event> (Nats-Msg-Id = id)",
        description: `Validates the envelope and publishes it; a re-post of the same id within JetStream's duplicate window is stored once (duplicate: true). The answer names the send_id of each channel to follow (GET its href). Bodies above ${MAX_ENVELOPE_BYTES} bytes get 413.`,
        headers: TraceHeaders,
        body: withExample(EventEnvelopeSchema, EVENT_EXAMPLE),
        response: {
          202: withExample(PublishResponse, {
            id: EVENT_EXAMPLE.id,
            subject: "events.order.paid",
            seq: 1042,
            duplicate: false,
            sends: [{ channel: "wechat", send_id: exampleSendId, href: `/notifications/sends/${exampleSendId}` }],
          }),
          ...errors(400, 413, 503),
        },
      },
    },
    async (request, reply) => {
      const res = await publishEvent(app.notify.js, app.notify.jsm, request.body, request.headers.traceparent);
      app.notify.gatewayMetrics.eventsPublished.inc({ event: request.body.event, duplicate: String(res.duplicate) });
      return reply
        .code(202)
        .header("traceparent", res.traceparent)
        .send({ id: res.id, subject: res.subject, seq: res.seq, duplicate: res.duplicate, sends: announcedSends(request.body, opts.channels) });
    },
  );
};

export default eventRoutes;
