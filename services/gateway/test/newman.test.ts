import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import newman from "newman";
import { Status, sendIdFor, type SendJob, type SendRecord } from "@notify/contracts";
import { RecordStore, publishToDlq } from "@notify/nats";
import { API_KEY, appFor, startNats } from "./fixtures/helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const collectionFile = path.join(root, "postman/notification-orchestrator.postman_collection.json");
const environmentFile = path.join(root, "postman/local.postman_environment.json");
const reportFile = path.join(root, "reports/newman/notification-orchestrator.json");

interface Summary {
  run: {
    stats: Record<"items" | "requests" | "assertions" | "testScripts", { total: number; failed: number }>;
    failures: { source?: { name?: string }; error: { test?: string; message: string } }[];
    executions: { item: { name: string }; response?: { code: number } }[];
  };
}

function runNewman(options: Record<string, unknown>): Promise<Summary> {
  return new Promise((resolve, reject) => {
    newman.run(options as never, (err: Error | null, summary: unknown) => (err ? reject(err) : resolve(summary as Summary)));
  });
}

const countRequests = (items: { item?: unknown[] }[]): number => items.reduce((n, i) => n + (i.item ? countRequests(i.item as { item?: unknown[] }[]) : 1), 0);

t.test("gateway - the Postman collection passes under newman against a live gateway and writes its JSON report", async (t) => {
  const nats = await startNats(t);
  const environment = JSON.parse(readFileSync(environmentFile, "utf8")) as { values: { key: string; value: string }[] };
  const orderId = environment.values.find((v) => v.key === "orderId")!.value;

  // What the dispatcher, sender and DLQ monitor would have left behind for orderId: the
  // collection looks the send up by its business key and lists the DLQ.
  const records = new RecordStore(nats.topology.buckets.records);
  const sendId = sendIdFor({ event: "order.paid", order_id: orderId, ticket_id: null, channel: "wechat" });
  const base: SendRecord = {
    send_id: sendId,
    event_id: `evt_newman_${orderId}`,
    event: "order.paid",
    order_id: orderId,
    ticket_id: null,
    channel: "wechat",
    language: "qaa",
    template_id: "TPL_NEWMAN_V2",
    openid: "oNewmanTraveller",
    status: Status.queued,
    attempts: 0,
    occurred_at: "2026-11-24T08:00:00Z",
    updated_at: new Date().toISOString(),
  };
  await records.write(sendId, () => base);
  await records.write(sendId, () => ({ ...base, status: Status.success, attempts: 1, sent_at: new Date().toISOString(), wechat_msgid: "100001" }));
  const deadJob: SendJob = {
    send_id: sendIdFor({ event: "ticket.expired", order_id: "O-NEWMAN-DEAD", ticket_id: "T-1", channel: "wechat" }),
    event_id: "evt_newman_dead",
    event: "ticket.expired",
    channel: "wechat",
    order_id: "O-NEWMAN-DEAD",
    ticket_id: "T-1",
    openid: "oNewmanTraveller",
    language: "zh-CN",
    template_id: "TPL_TICKET_EXPIRED_ZH",
    occurred_at: "2026-11-24T08:00:00Z",
    payload: { touser: "oNewmanTraveller", template_id: "TPL_TICKET_EXPIRED_ZH", data: { thing1: { value: "x" } } },
  };
  await publishToDlq(nats.topology.jsm.jetstream(), deadJob, { send_id: deadJob.send_id, attempts: 5, last_error: "errcode 45011", reason: "max_deliveries" });

  const app = await appFor(t, nats);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  mkdirSync(path.dirname(reportFile), { recursive: true });
  const collection = JSON.parse(readFileSync(collectionFile, "utf8")) as { item: { item?: unknown[] }[] };
  const summary = await runNewman({
    collection,
    environment: environmentFile,
    envVar: [
      // The environment builds baseUrl from gatewayPort (nothing in it names a port).
      { key: "gatewayPort", value: baseUrl.slice(baseUrl.lastIndexOf(":") + 1) },
      { key: "apiKey", value: API_KEY },
    ],
    reporters: ["json"],
    reporter: { json: { export: reportFile } },
    timeoutRequest: 10_000,
  });

  for (const f of summary.run.failures) t.comment(`newman failure in "${f.source?.name}": ${f.error.test ?? ""} ${f.error.message}`);
  t.equal(summary.run.failures.length, 0, "no failures");
  t.equal(summary.run.stats.assertions.failed, 0, "no failed assertions");
  t.equal(summary.run.stats.requests.failed, 0, "every request got an answer");
  t.equal(summary.run.stats.items.total, countRequests(collection.item), "every request of the collection ran");
  t.equal(summary.run.stats.items.failed, 0);
  t.ok(summary.run.stats.assertions.total >= 50, `${summary.run.stats.assertions.total} assertions ran`);

  const codes = Object.fromEntries(summary.run.executions.map((e) => [e.item.name, e.response?.code]));
  t.equal(codes["Create template"], 201);
  t.equal(codes["Preview without a template (404)"], 404);
  t.equal(codes["Preview with missing fields (422)"], 422);
  t.equal(codes["Unknown send id (404)"], 404);
  t.equal(codes["Look up by business key"], 200);
  t.equal(codes["List the DLQ"], 200);

  const report = JSON.parse(readFileSync(reportFile, "utf8")) as Summary & { collection: { info: { name: string } } };
  t.equal(report.collection.info.name, "notification-orchestrator", "the JSON report is written");
  t.equal(report.run.stats.assertions.failed, 0);
  t.equal(report.run.failures.length, 0);
  t.notMatch(readFileSync(reportFile, "utf8"), "GATEWAY_API_KEYS-value", "the run used the test's key, not the placeholder");
});
