import t from "tap";
import { Status, sendIdFor, type SendRecord } from "@notify/contracts";
import { createLogger } from "@notify/log";
import { RecordStore } from "@notify/nats";
import { Projector, migrate, openDb } from "@notify/sendlog";
import { buildApp } from "@notify/gateway";
import { AUTH, appFor, paidTemplate, settings, startNats } from "./fixtures/helpers.js";

// The search routes over the SQL send log: a real nats-server, records written to KV the
// way the dispatcher and senders write them, projected into PGlite by the projector.
const nats = await startNats(t);
const records = new RecordStore(nats.topology.buckets.records);
const db = await openDb({ pgliteDir: "memory://" });
t.teardown(() => db.close());
await migrate(db);
const log = createLogger({ name: "test", level: "silent" });
const projector = new Projector({ js: nats.topology.jsm.jetstream(), jsm: nats.topology.jsm, db, log });
await projector.start();
t.teardown(() => projector.stop());

const app = buildApp({ nc: nats.nc, topology: nats.topology, settings: settings(), sendlog: { db, projector } });
t.teardown(() => app.close());
await app.ready();

async function write(order_id: string, ticket_id: string | null, statuses: [SendRecord["status"], Partial<SendRecord>?][], openid = "oTraveller1"): Promise<string> {
  const send_id = sendIdFor({ event: "order.paid", order_id, ticket_id, channel: "wechat" });
  for (const [status, over] of statuses) {
    const w = await records.write(send_id, () => ({
      send_id, event_id: `evt_${order_id}_${ticket_id}`, event: "order.paid", order_id, ticket_id, channel: "wechat", language: "zh-CN",
      template_id: "TPL", openid, status, attempts: status === Status.queued ? 0 : 1, occurred_at: "2026-11-24T08:00:00Z", updated_at: new Date().toISOString(), ...over,
    }));
    if (!w.written) throw new Error(`could not write ${status}`);
  }
  return send_id;
}

const a = await write("O-S-1", null, [[Status.queued], [Status.retrying, { last_error: "errcode -1" }], [Status.failed, { reason: "wechat_permanent", last_error: "43004" }]]);
const b = await write("O-S-1", "T-1", [[Status.queued], [Status.success, { sent_at: new Date().toISOString() }]]);
const c = await write("O-S-2", null, [[Status.queued], [Status.failed, { reason: "wechat_permanent" }]], "oOther");
await projector.caughtUp();

const get = (url: string) => app.inject({ method: "GET", url, headers: AUTH });

t.test("GET /notifications/sends filters, pages with a cursor, and names unknown parameters", async (t) => {
  const failed = await get("/notifications/sends?status=failed");
  t.equal(failed.statusCode, 200);
  t.same(failed.json().items.map((i: { send_id: string }) => i.send_id).sort(), [a, c].sort());
  t.match(failed.json().items.find((i: { send_id: string }) => i.send_id === a), { status: "failed", reason: "wechat_permanent", last_error: "43004", attempts: 1 });

  const byOpenid = await get("/notifications/sends?openid=oOther");
  t.same(byOpenid.json().items.map((i: { send_id: string }) => i.send_id), [c]);

  const seen: string[] = [];
  let url = "/notifications/sends?order_id=O-S-1&limit=1";
  for (let i = 0; i < 5; i++) {
    const page = (await get(url)).json();
    seen.push(...page.items.map((x: { send_id: string }) => x.send_id));
    if (!page.next_cursor) break;
    url = `/notifications/sends?order_id=O-S-1&limit=1&cursor=${encodeURIComponent(page.next_cursor)}`;
  }
  t.same(seen.sort(), [a, b].sort(), "two pages of one, then no cursor");

  const unknown = await get("/notifications/sends?status=failed&statsu=dead");
  t.equal(unknown.statusCode, 400);
  t.equal(unknown.json().message, 'unknown query parameter "statsu"');
  const emptyLimit = await get("/notifications/sends?status=failed&limit=");
  t.equal(emptyLimit.statusCode, 400, "an empty limit is not silently ignored");
  t.match(emptyLimit.json().message, /limit/);
  const badStatus = await get("/notifications/sends?status=lost");
  t.equal(badStatus.statusCode, 400);
  const badCursor = await get("/notifications/sends?cursor=not-ours");
  t.equal(badCursor.statusCode, 400);
  t.match(badCursor.json(), { details: { field: "cursor" } });
  const badTime = await get("/notifications/sends?created_from=yesterday");
  t.equal(badTime.statusCode, 400);
  const hostile = await get(`/notifications/sends?order_id=${encodeURIComponent("O-\u0000'; DROP TABLE notification_events;--")}`);
  t.equal(hostile.statusCode, 200, "any order id is a value, never SQL");
  t.same(hostile.json().items, []);
  t.equal((await app.inject({ method: "GET", url: "/notifications/sends?status=failed" })).statusCode, 401, "the bearer key is required");
});

t.test("GET /notifications/orders/:order_id lists each send with its history, newest first", async (t) => {
  const r = await get("/notifications/orders/O-S-1");
  t.equal(r.statusCode, 200);
  const body = r.json();
  t.equal(body.count, 2);
  const first = body.items.find((i: { send_id: string }) => i.send_id === a);
  t.same(first.history.map((h: { status: string }) => h.status), ["failed", "retrying", "queued"]);
  const none = await get(`/notifications/orders/${encodeURIComponent("no such order")}`);
  t.same(none.json(), { order_id: "no such order", items: [], count: 0, truncated: false });
});

t.test("GET /notifications/sends/stats counts by status × event × channel", async (t) => {
  const r = await get("/notifications/sends/stats?interval=day");
  t.equal(r.statusCode, 200);
  const counts = Object.fromEntries(r.json().buckets.map((x: { status: string; count: number }) => [x.status, x.count]));
  t.same(counts, { failed: 2, success: 1 });
  t.equal(r.json().total, 3);
  t.equal((await get("/notifications/sends/stats?interval=hour&from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z")).statusCode, 400, "a range too long for hourly buckets");
  t.equal((await get("/notifications/sends/stats?from=2026-06-01T00:00:00Z&to=2026-01-01T00:00:00Z")).statusCode, 400, "from after to");
});

t.test("the business-key look-up stays, at /notifications/sends/by-key", async (t) => {
  const r = await get("/notifications/sends/by-key?event=order.paid&order_id=O-S-1&ticket_id=T-1");
  t.equal(r.statusCode, 200);
  t.equal(r.json().send_id, b);
});

t.test("without a send log database the search routes answer 503 naming the problem; the KV routes still work", async (t) => {
  const bare = await appFor(t, nats);
  for (const url of ["/notifications/sends", "/notifications/orders/O-S-1", "/notifications/sends/stats"]) {
    const r = await bare.inject({ method: "GET", url, headers: AUTH });
    t.equal(r.statusCode, 503, url);
    t.match(r.json().message, /send log database is not configured/);
  }
  t.equal((await bare.inject({ method: "GET", url: `/notifications/sends/${a}`, headers: AUTH })).statusCode, 200);
  const ready = (await bare.inject({ method: "GET", url: "/readyz" })).json();
  t.match(ready, { status: "ready", checks: { sendlog: { db: "off" } } });
  const withDb = (await app.inject({ method: "GET", url: "/readyz" })).json();
  t.match(withDb, { status: "ready", checks: { sendlog: { db: true, projector: { streams: Array } } } });
});

t.test("templates: listed from the watched cache, a write is read back at once, with who wrote it", async (t) => {
  const post = await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate({ template_id: "TPL_CACHE_1" }) });
  t.equal(post.statusCode, 201);
  const list = await get("/notifications/templates?event=order.paid");
  t.equal(list.json().items[0].template_id, "TPL_CACHE_1", "the list right after the write has it");
  t.match(list.json().items[0].updated_by, /^key:[0-9a-f]{12}$/);
  await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate({ template_id: "TPL_CACHE_2" }) });
  const preview = await app.inject({ method: "POST", url: "/notifications/preview", headers: AUTH, payload: { event: "order.paid", data: { amount: 1, title: "x" } } });
  t.equal(preview.json().template.template_id, "TPL_CACHE_2", "a preview right after an edit renders the new revision");
  await projector.caughtUp();
  const rows = await db.query<{ template_id: string; changed_by: string }>("SELECT template_id, changed_by FROM notification_templates ORDER BY revision");
  t.same(rows.map((r) => r.template_id), ["TPL_CACHE_1", "TPL_CACHE_2"]);
  t.match(rows[0]!.changed_by, /^key:[0-9a-f]{12}$/, "SQL keeps who changed each revision");
});
