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
  "ticket.expired": { title: "West Lake night tour", expired_at: new Date().toISOString() },
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

const nc = await connect({ servers: (process.env.NATS_URL ?? "nats://127.0.0.1:4222").split(","), noAsyncTraces: true });
const js = jetstream(nc);
// The event id is the Nats-Msg-Id: a publisher's retry inside 2 minutes is stored once.
const ack = await js.publish(Subjects.event(event), JSON.stringify(envelope), { msgID: envelope.id });
console.log(`published ${event} ${envelope.id} (stream seq ${ack.seq})`);

const sendId = sendIdFor({ event, order_id: envelope.order_id, ticket_id: envelope.ticket_id, channel: "wechat" });
const records = await new Kvm(js).open(Buckets.records);
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
console.log(`send ${sendId}: ${last ? JSON.stringify(last, null, 2) : "no record yet"}`);
await nc.close();
process.exit(last?.status === "success" ? 0 : 1);
