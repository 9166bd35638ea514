import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { FailReason, Status, Streams, Subjects, decodeJson, type AlertFact, type EventEnvelope } from "@notify/contracts";
import { readDlqMeta } from "@notify/nats";
import { buildApp } from "@notify/gateway";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { waitFor } from "../support/wait.js";
import { chaosBed, putTemplate, readRecords, sendIdOf, stopwatch, summaryLine, tally, waitDelivered, waitSendsEmpty, workerEnv } from "../support/chaos.js";

const OUTAGE_MS = 6000;
const RETRY_BASE_MS = 200;
const PER_BATCH = 40;
const DLQ_ALERT_THRESHOLD = 10;
const API_KEY = "chaos-outage-key-3b9f0c2e71";

t.test("chaos - WeChat answers -1 for a while: exponential retries, exhausted jobs dead-lettered, one alert each, replay delivers", async (t) => {
  const { server, nc, topo, records, js, sim, procs } = await chaosBed(t);
  await putTemplate(topo.buckets.templates, paidTemplate());

  // The alert webhook: a local HTTP endpoint that keeps what it is sent.
  const hooks: AlertFact[] = [];
  const hook = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      try {
        hooks.push(JSON.parse(body) as AlertFact);
      } catch {
        /* counted as nothing */
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => hook.close(() => r())));

  const env = workerEnv(server.url, sim, { RETRY_BASE_MS: String(RETRY_BASE_MS) });
  await Promise.all([
    procs.startReady("dispatcher", env),
    procs.startReady("sender", env),
    procs.startReady("dlq-monitor", {
      ...env,
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`,
      DLQ_ALERT_THRESHOLD: String(DLQ_ALERT_THRESHOLD),
      ALERT_WEBHOOK_BACKOFF_MS: "100",
    }),
  ]);

  const publish = (batch: EventEnvelope[]) => Promise.all(batch.map((e) => js.publish(Subjects.event(e.event), JSON.stringify(e), { msgID: e.id })));
  // Early events spend all five deliveries inside the outage (at about 0, .2, .6, 1.4,
  // 3.0 s); late ones (from 3.5 s) still have deliveries left when it ends.
  const early = Array.from({ length: PER_BATCH }, () => paidEvent());
  const late = Array.from({ length: PER_BATCH }, () => paidEvent());
  const events = [...early, ...late];
  const elapsed = stopwatch();
  sim.setFault({ kind: "errcode", errcode: -1 });
  await publish(early);
  await sleep(OUTAGE_MS - 2500);
  await publish(late);
  await sleep(2500); // the rest of the outage: the scenario's duration, not a wait for a condition
  sim.clearFaults();
  const outageMs = elapsed();

  // Every key ends delivered, or dead with its job in the DLQ.
  const final = await waitFor(async () => {
    const recs = await readRecords(records, events.map((e) => sendIdOf(e)));
    return [...recs.values()].every((r) => r && (r.status === Status.success || r.status === Status.dead)) ? recs : null;
  }, "every record success or dead", 60_000, 200);
  await waitSendsEmpty(topo.jsm, 30_000, records);
  const deadIds = new Set([...final.values()].filter((r) => r!.status === Status.dead).map((r) => r!.send_id));
  const dlqInfo = await topo.jsm.streams.info(Streams.dlq);
  const dlqEntries = new Map<string, { seq: number; attempts: number; reason: string }>();
  for (let seq = dlqInfo.state.first_seq; dlqInfo.state.messages > 0 && seq <= dlqInfo.state.last_seq; seq++) {
    const m = await topo.jsm.streams.getMessage(Streams.dlq, { seq }).catch(() => null);
    if (!m) continue;
    const meta = readDlqMeta(m.header);
    dlqEntries.set(meta.send_id, { seq, attempts: meta.attempts, reason: meta.reason });
  }
  const beforeReplay = tally(sim, events, new Set([...deadIds].filter((id) => dlqEntries.has(id))));
  t.comment(summaryLine("wechat-outage", beforeReplay, elapsed(), { outage_ms: outageMs, sim_failed_calls: sim.stats().failed }));

  t.equal(beforeReplay.lost, 0, "nothing lost: each key delivered, or dead and in the DLQ");
  t.equal(beforeReplay.duplicated, 0, "nothing sent twice");
  t.ok(deadIds.size > DLQ_ALERT_THRESHOLD, `jobs that exhausted 5 deliveries were dead-lettered (${deadIds.size})`);
  t.ok(early.every((e) => deadIds.has(sendIdOf(e))), "every early event (5 deliveries inside the outage) is dead");
  t.ok(beforeReplay.delivered > 0, `late events recovered after the outage (${beforeReplay.delivered})`);
  t.equal(dlqEntries.size, deadIds.size, "one DLQ entry per dead record");
  t.ok([...dlqEntries.values()].every((d) => d.attempts === 5 && d.reason === FailReason.maxDeliveries), "each entry: 5 attempts, reason max_deliveries");
  t.ok([...deadIds].every((id) => final.get(id)!.attempts === 5), "each dead record says 5 attempts");
  const recovered = late.filter((e) => final.get(sendIdOf(e))!.status === Status.success).map((e) => final.get(sendIdOf(e))!);
  t.ok(recovered.every((r) => r.attempts > 1), "late events were delivered on a retry, not the first attempt");

  // Back-off: each dead job waited the configured delay after every failed attempt
  // (RETRY_JITTER=0: exactly 200·2^(n-1) ms), never less. The gaps' upper bound is checked
  // on a quiet single job in services/sender/test/retry-schedule; here 40 jobs share one
  // busy sender, so a gap may run longer than its delay.
  const tries = await Promise.all([...deadIds].slice(0, 10).map(async (id) => (await records.history(id)).filter((h) => h.status === Status.retrying)));
  const gaps = tries.map((rs) => rs.slice(1).map((r, i) => Date.parse(r.updated_at) - Date.parse(rs[i]!.updated_at)));
  const delays = tries.map((rs) => rs.slice(0, -1).map((r) => Date.parse(r.next_attempt_at ?? "") - Date.parse(r.updated_at)));
  t.comment(`attempt gaps (ms) of dead jobs: ${gaps.slice(0, 3).map((g) => `[${g.join(", ")}]`).join(" ")} (schedule ${RETRY_BASE_MS}·2^(n-1))`);
  t.ok(delays.every((d) => JSON.stringify(d) === JSON.stringify([200, 400, 800, 1600])), "every dead job was scheduled 200, 400, 800, 1600 ms after its failed attempts (next_attempt_at)");
  t.ok(gaps.every((g, j) => g.length === 4 && g.every((gap, i) => gap >= delays[j]![i]! - 5)), "and no attempt came before its next_attempt_at");

  // Alerts: the streak and the DLQ depth each alerted once (webhook and notification.alert).
  await waitFor(() => hooks.some((h) => h.kind === "dlq_depth") && hooks.some((h) => h.kind === "consecutive_failures"), "both alerts at the webhook", 30_000);

  // Recovery: replay every DLQ entry through the gateway's admin route.
  const app = buildApp({ nc, topology: topo, settings: { apiKeys: [API_KEY], auth: "on", rateLimitPerMinute: 100_000 } });
  t.teardown(() => app.close());
  await app.ready();
  const auth = { authorization: `Bearer ${API_KEY}` };
  const list = await app.inject({ method: "GET", url: "/notifications/dlq?limit=500", headers: auth });
  t.equal(list.statusCode, 200, "the DLQ list answers");
  const items = list.json<{ items: { seq: number; send_id: string }[] }>().items;
  t.equal(items.length, deadIds.size, "the gateway lists every dead letter");
  const replayed = await Promise.all(items.map((i) => app.inject({ method: "POST", url: `/notifications/dlq/${i.seq}/replay`, headers: auth })));
  t.same([...new Set(replayed.map((r) => r.statusCode))], [200], "every replay accepted");
  const deadEvents = events.filter((e) => deadIds.has(sendIdOf(e)));
  await waitDelivered(sim, deadEvents, 30_000, "every replayed job delivered");
  await waitSendsEmpty(topo.jsm, 30_000, records);
  const after = await readRecords(records, events.map((e) => sendIdOf(e)));
  const afterReplay = tally(sim, events);
  t.comment(summaryLine("wechat-outage-after-replay", afterReplay, elapsed(), { replayed: items.length }));
  t.equal(afterReplay.delivered, events.length, "after the replay every key is delivered");
  t.equal(afterReplay.duplicated, 0, "and none twice");
  t.ok([...after.values()].every((r) => r?.status === Status.success), "every record success");
  t.equal((await topo.jsm.streams.info(Streams.dlq)).state.messages, 0, "the DLQ is empty");

  const alertFacts: AlertFact[] = [];
  const ni = await topo.jsm.streams.info(Streams.notifications);
  for (let seq = ni.state.first_seq; seq <= ni.state.last_seq; seq++) {
    const m = await topo.jsm.streams.getMessage(Streams.notifications, { seq }).catch(() => null);
    if (m?.subject === Subjects.alert) alertFacts.push(decodeJson<AlertFact>(m.data));
  }
  const count = (list: AlertFact[]) => list.reduce<Record<string, number>>((acc, a) => ({ ...acc, [a.kind]: (acc[a.kind] ?? 0) + 1 }), {});
  t.same(count(hooks), { consecutive_failures: 1, dlq_depth: 1 }, "the webhook got each alert once");
  t.same(count(alertFacts), { consecutive_failures: 1, dlq_depth: 1 }, "notification.alert carried each alert once");
});
