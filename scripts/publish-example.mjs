#!/usr/bin/env node
// npm run publish:example -- order.paid [locale]
// Publishes one realistic event straight onto NATS, the way a publisher service does,
// then follows its send record until it is final.
import { randomUUID } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Buckets, EVENT_TYPES, Subjects, sendIdFor } from "../libs/contracts/dist/index.js";

const event = process.argv[2] ?? "order.paid";
const locale = process.argv[3] ?? "zh-CN";
if (!EVENT_TYPES.includes(event)) {
  console.error(`unknown event ${event}; one of: ${EVENT_TYPES.join(", ")}`);
  process.exit(2);
}
const isTicket = event.startsWith("ticket.");
const data = {
  "order.paid": { amount: 128.5, title: "West Lake night tour" },
  "order.cancelled": { title: "West Lake night tour", reason: "Weather" },
  "ticket.refunded": { amount: 64, title: "West Lake night tour" },
  // WeChat's time keywords take "2026-11-24 16:00" (Beijing time), not ISO 8601.
  "ticket.expired": { title: "West Lake night tour", expired_at: new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 16).replace("T", " ") },
  "ticket.redeemed": { title: "West Lake night tour", venue: "Pier 3" },
}[event];
const envelope = {
  id: `evt_${randomUUID()}`,
  event,
  occurred_at: new Date().toISOString(),
  order_id: `O-${Date.now()}`,
  ticket_id: isTicket ? `T-${Date.now()}` : null,
  recipient: { openid: "oExampleTraveller01", locale },
  data,
};

const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
/** One line and exit 1: a newcomer's first run must say what is missing, not print a stack. */
function fail(message) {
  console.error(`publish:example: ${message}`);
  process.exit(1);
}
const nc = await connect({ servers: natsUrl.split(","), noAsyncTraces: true, timeout: 3000, maxReconnectAttempts: 0 }).catch((err) =>
  fail(`no NATS server at ${natsUrl} (${err.message}). Start the system with \`npm start\`, or set NATS_URL to the server it printed.`),
);
const js = jetstream(nc, { timeout: 5000 });
// The event id is the Nats-Msg-Id: a publisher's retry inside 2 minutes is stored once.
const ack = await js.publish(Subjects.event(event), JSON.stringify(envelope), { msgID: envelope.id }).catch((err) =>
  // The client words "no stream listens on this subject" as "jetstream is not enabled".
  fail(
    /jetstream is not enabled|no responders/i.test(err.message)
      ? `no stream stores ${Subjects.event(event)} on NATS at ${natsUrl}: the services create it when they start (\`npm start\`)`
      : `NATS at ${natsUrl} did not store the event (${err.message})`,
  ),
);
console.log(`published ${event} ${envelope.id} (stream seq ${ack.seq}); following its send record for up to 20 s…`);

const sendId = sendIdFor({ event, order_id: envelope.order_id, ticket_id: envelope.ticket_id, channel: "wechat" });
const records = await new Kvm(js).open(Buckets.records).catch((err) => fail(`cannot open the ${Buckets.records} bucket (${err.message})`));
const deadline = Date.now() + 20_000;
let last;
while (Date.now() < deadline) {
  const e = await records.get(sendId);
  if (e?.operation === "PUT") {
    last = e.json();
    if (["success", "failed", "dead", "skipped", "rejected"].includes(last.status)) break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
console.log(`send ${sendId}: ${last ? JSON.stringify(last, null, 2) : "no record after 20 s: is the dispatcher running (npm start starts it)?"}`);
await nc.close();
process.exit(last?.status === "success" ? 0 : 1);
