import t from "tap";
import { Status } from "@notify/contracts";
import { Stack } from "../support/stack.js";
import { waitFor } from "../support/wait.js";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { scrapeCounter, startService, type ServiceProcess } from "../support/processes.js";

t.test("pipeline - two sender processes share one consumer and deliver each message once", async (t) => {
  // Dispatcher in-process, senders as real separate processes.
  const stack = await Stack.start({ senders: 0 });
  t.teardown(() => stack.close());
  await stack.putTemplate(paidTemplate());
  stack.sim.setFault({ kind: "latency", ms: 5 });

  const env = { NATS_URL: stack.server.url, WECHAT_API_BASE: stack.sim.url, WECHAT_APP_ID: stack.sim.appId, WECHAT_APP_SECRET: "local-simulator-secret", SENDER_CONCURRENCY: "16", SENDER_ACK_WAIT_MS: "10000", WECHAT_TIMEOUT_MS: "2000" };
  const senders: ServiceProcess[] = [startService("sender", env, "sender-a"), startService("sender", env, "sender-b")];
  t.teardown(async () => { await Promise.all(senders.map((s) => s.stop())); });
  const urls = (await Promise.all(senders.map((s) => s.ready()))).map((l) => String(l.metrics));

  const t0 = Date.now();
  const events = Array.from({ length: 400 }, () => paidEvent());
  await Promise.all(events.map((e) => stack.publish(e)));
  await waitFor(async () => {
    for (const e of events) if (!stack.sim.deliveriesFor(stack.sendId(e)).length) return false;
    return true;
  }, "400 deliveries", 60_000);

  t.comment(`400 delivered in ${Date.now() - t0} ms`);
  // A sender counts a success after WeChat answered and the record is written: the last
  // messages can be at the simulator a moment before their counters move.
  const perProcess = await waitFor(async () => {
    const n = await Promise.all(urls.map((u) => scrapeCounter(u, "notifications_sent_total", { status: "success" })));
    return n[0]! + n[1]! >= 400 ? n : null;
  }, "the success counters to reach 400", 10_000);
  t.equal(perProcess[0]! + perProcess[1]!, 400, "every job sent by exactly one process");
  t.ok(perProcess.every((n) => n >= 80), `both processes did real work (${perProcess.join(" / ")})`);
  t.equal(events.filter((e) => stack.sim.deliveriesFor(stack.sendId(e)).length !== 1).length, 0, "each message delivered once");
  const recs = await Promise.all(events.map((e) => stack.records.get(stack.sendId(e))));
  t.equal(recs.filter((r) => r?.record.status === Status.success).length, 400);
  // One access token shared through KV: the simulator issued one, not one per process.
  t.equal(stack.sim.stats().tokensIssued, 1, "one access token for both processes");
});
