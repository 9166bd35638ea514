import t from "tap";
import { HeaderNames, MAX_ENVELOPE_BYTES, Streams, decodeJson, sendIdFor } from "@notify/contracts";
import { AUTH, appFor, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);

const envelope = (over: Record<string, unknown> = {}) => ({
  id: `evt_${Math.random().toString(36).slice(2)}`,
  event: "order.paid",
  occurred_at: "2026-11-24T08:00:00Z",
  order_id: "O-1001",
  ticket_id: null,
  recipient: { openid: "oTraveller1", locale: "en-US" },
  data: { amount: 128.5, title: "West Lake night tour" },
  ...over,
});

t.test("gateway - POST /notifications/events publishes on events.<event> with Nats-Msg-Id and traceparent", async (t) => {
  const app = await appFor(t, nats);
  const env = envelope();
  const callerTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const res = await app.inject({ method: "POST", url: "/notifications/events", headers: { ...AUTH, traceparent: callerTrace }, payload: env });
  t.equal(res.statusCode, 202);
  const body = res.json();
  const sendId = sendIdFor({ event: env.event, order_id: env.order_id, ticket_id: env.ticket_id, channel: "wechat" });
  t.same(body, { id: env.id, subject: "events.order.paid", seq: body.seq, duplicate: false, sends: [{ channel: "wechat", send_id: sendId, href: `/notifications/sends/${sendId}` }] }, "names the send to follow");

  const m = await nats.topology.jsm.streams.getMessage(Streams.events, { seq: body.seq });
  t.equal(m!.subject, "events.order.paid");
  t.equal(m!.header.get(HeaderNames.msgId), env.id, "Nats-Msg-Id is the event id");
  t.same(decodeJson(m!.data), env, "the envelope as posted");
  const tp = m!.header.get(HeaderNames.traceparent);
  t.match(tp, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/, "joins the caller's trace");
  t.equal(res.headers.traceparent, tp, "and returns it");

  const again = await app.inject({ method: "POST", url: "/notifications/events", headers: AUTH, payload: env });
  t.equal(again.statusCode, 202);
  t.equal(again.json().duplicate, true, "a re-post within the duplicate window is stored once");
  t.equal(again.json().seq, body.seq);
  t.same(again.json().sends, body.sends, "a duplicate points at the same send");

  const fresh = await app.inject({ method: "POST", url: "/notifications/events", headers: AUTH, payload: envelope({ event: "ticket.redeemed", ticket_id: "T-9" }) });
  t.equal(fresh.json().subject, "events.ticket.redeemed");
  const m2 = await nats.topology.jsm.streams.getMessage(Streams.events, { seq: fresh.json().seq });
  t.match(m2!.header.get(HeaderNames.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, "a new trace when the caller sends none");
});

t.test("gateway - a re-post answered 'duplicate' of a copy EVENTS does not hold is stored again", async (t) => {
  const app = await appFor(t, nats);
  const env = envelope();
  const first = (await app.inject({ method: "POST", url: "/notifications/events", headers: AUTH, payload: env })).json();
  // The first copy is gone while the server still remembers its message id (what a
  // partitioned leader's never-committed publish looks like to the client's retry).
  await nats.topology.jsm.streams.deleteMessage(Streams.events, first.seq);
  const again = await app.inject({ method: "POST", url: "/notifications/events", headers: AUTH, payload: env });
  t.equal(again.statusCode, 202);
  t.equal(again.json().duplicate, false, "not reported as a duplicate: a new copy was stored");
  t.not(again.json().seq, first.seq);
  const m = await nats.topology.jsm.streams.getMessage(Streams.events, { seq: again.json().seq });
  t.same(decodeJson(m!.data), env, "the envelope, under its own event id");
  t.equal(m!.header.get(HeaderNames.msgId), `${env.id}.republish.1`, "a derived message id (the dispatcher de-duplicates by event id)");
});

t.test("gateway - POST /notifications/events rejects invalid envelopes (400 with reasons) and large ones (413)", async (t) => {
  const app = await appFor(t, nats);
  const post = (payload: unknown) => app.inject({ method: "POST", url: "/notifications/events", headers: AUTH, payload: payload as object });

  const badEvent = await post(envelope({ event: "order.shipped" }));
  t.equal(badEvent.statusCode, 400);
  t.equal(badEvent.json().error, "bad_request");
  t.match(badEvent.json().message, /event/);
  t.equal(badEvent.json().details[0].path, "/event");

  const noRecipient = await post({ ...envelope(), recipient: undefined });
  t.equal(noRecipient.statusCode, 400);
  t.match(noRecipient.json().message, /recipient/);

  const badDate = await post(envelope({ occurred_at: "yesterday" }));
  t.equal(badDate.statusCode, 400);
  t.match(badDate.json().message, /occurred_at/);

  const badOpenid = await post(envelope({ recipient: { openid: "has spaces" } }));
  t.equal(badOpenid.statusCode, 400);

  const big = await post(envelope({ data: { blob: "x".repeat(MAX_ENVELOPE_BYTES) } }));
  t.equal(big.statusCode, 413);
  t.equal(big.json().error, "payload_too_large");

  const info = await nats.topology.jsm.streams.info(Streams.events);
  const before = info.state.messages;
  await post(envelope({ event: "nope" }));
  t.equal((await nats.topology.jsm.streams.info(Streams.events)).state.messages, before, "nothing invalid reaches the bus");
});

t.test("gateway - an accepted event names one send_id per channel of the deployment (CHANNELS)", async (t) => {
  const app = await appFor(t, nats, { settings: { channels: ["wechat", "sms"] } });
  const env = envelope({ event: "ticket.redeemed", ticket_id: "T-77" });
  const res = await app.inject({ method: "POST", url: "/notifications/events", headers: AUTH, payload: env });
  t.equal(res.statusCode, 202);
  const sends = res.json().sends as { channel: string; send_id: string; href: string }[];
  t.same(sends.map((s) => s.channel), ["wechat", "sms"]);
  for (const s of sends) {
    t.equal(s.send_id, sendIdFor({ event: env.event, order_id: env.order_id, ticket_id: "T-77", channel: s.channel }), `${s.channel}: the send_id of the business key`);
    const follow = await app.inject({ method: "GET", url: s.href, headers: AUTH });
    t.equal(follow.statusCode, 404, "the href is the record's route (404 until the dispatcher records it)");
  }
});
