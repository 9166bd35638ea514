// Rollback of one template to a revision of its KV history, over real HTTP against the
// gateway on a real nats-server: If-Match, unknown template/revision, delete markers,
// and the history naming who rolled back and to what.
import t from "tap";
import { templateKey } from "@notify/contracts";
import { API_KEY, appFor, paidTemplate, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);

t.test("gateway - rollback to a history revision, over HTTP", async (t) => {
  const app = await appFor(t, nats);
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  const http = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, etag: res.headers.get("etag"), body: (text ? JSON.parse(text) : null) as Record<string, any> };
  };
  const one = "/notifications/templates/ticket.refunded/wechat/zh-CN";
  const rollback = (revision: unknown, headers: Record<string, string> = {}) => http("POST", `${one}/rollback`, { revision }, headers);
  const tpl = (template_id: string) => paidTemplate({ event: "ticket.refunded", template_id });

  const v1 = await http("POST", "/notifications/templates", tpl("TPL_REFUND_V1"));
  t.equal(v1.status, 201);
  const v2 = await http("POST", "/notifications/templates", tpl("TPL_REFUND_V2"), { "if-match": v1.etag! });
  t.equal(v2.status, 200);
  const rev1 = v1.body.template.revision as number;
  const rev2 = v2.body.template.revision as number;

  t.equal((await rollback(rev1, { "if-match": v1.etag! })).status, 412, "a stale If-Match: 412, nothing written");
  t.equal((await http("GET", one)).body.template_id, "TPL_REFUND_V2", "still V2 after the 412");
  t.equal((await rollback(rev1, { "if-match": "yesterday" })).status, 400, "an If-Match that is not an ETag: 400");

  const back = await rollback(rev1, { "if-match": v2.etag! });
  t.equal(back.status, 200, "rolled back with the current ETag");
  const rev3 = back.body.template.revision as number;
  t.ok(rev3 > rev2, "the rollback is a new revision");
  t.equal(back.etag, `"${rev3}"`);
  t.equal(back.body.template.template_id, "TPL_REFUND_V1", "the content of revision 1");
  t.equal(back.body.template.rolled_back_to, rev1);
  t.match(back.body.template.updated_by, /^key:[0-9a-f]{12}$/, "who: the key's id");
  t.notOk(JSON.stringify(back.body).includes(API_KEY), "never the key itself");
  const stored = await nats.topology.buckets.templates.get(templateKey("ticket.refunded", "wechat", "zh-CN"));
  t.equal(stored?.json<{ template_id: string }>().template_id, "TPL_REFUND_V1", "stored in KV");

  // Without If-Match: applies to whatever is current (documented), still a new revision.
  const again = await rollback(rev2);
  t.equal(again.status, 200, "no If-Match: rolls back the current revision");
  t.equal(again.body.template.template_id, "TPL_REFUND_V2");

  const missing = await rollback(9999);
  t.equal(missing.status, 404, "a revision not in the history: 404");
  t.match(missing.body.message, /no revision 9999/);
  const unknown = await http("POST", "/notifications/templates/ticket.expired/wechat/fr/rollback", { revision: 1 });
  t.equal(unknown.status, 404, "an unknown template: 404");
  for (const bad of [0, -1, 1.5, null, "two"]) t.equal((await rollback(bad)).status, 400, `revision ${JSON.stringify(bad)}: 400`);
  const extra = await http("POST", `${one}/rollback`, { revision: rev1, template_id: "X" });
  t.equal(extra.status, 400, "unknown body fields: 400");

  // A delete marker is not a template: 409. Restoring a PUT revision after the delete brings it back.
  const current = await http("GET", one);
  const del = await http("DELETE", one, undefined, { "if-match": current.etag! });
  t.equal(del.status, 204);
  const history = (await http("GET", `${one}/history`)).body.items as { revision: number; operation: string }[];
  const marker = history.at(-1)!;
  t.equal(marker.operation, "DEL");
  const onMarker = await rollback(marker.revision);
  t.equal(onMarker.status, 409, "the delete marker: 409");
  t.match(onMarker.body.message, /delete marker/);
  t.equal((await rollback(rev1, { "if-match": "*" })).status, 412, "If-Match: * on a deleted template: 412");
  const restored = await rollback(rev1, { "if-match": `"${marker.revision}"` });
  t.equal(restored.status, 200, "a deleted template restored from its history");
  t.equal((await http("GET", one)).body.template_id, "TPL_REFUND_V1");

  const audit = (await http("GET", `${one}/history`)).body.items as { operation: string; template?: { template_id: string; updated_by?: string; rolled_back_to?: number } }[];
  t.same(
    audit.map((i) => [i.operation, i.template?.template_id, i.template?.rolled_back_to]),
    [
      ["PUT", "TPL_REFUND_V1", undefined],
      ["PUT", "TPL_REFUND_V2", undefined],
      ["PUT", "TPL_REFUND_V1", rev1],
      ["PUT", "TPL_REFUND_V2", rev2],
      ["DEL", undefined, undefined],
      ["PUT", "TPL_REFUND_V1", rev1],
    ],
    "the history: each rollback with the revision it restored",
  );
  t.ok(audit.filter((i) => i.operation === "PUT").every((i) => /^key:[0-9a-f]{12}$/.test(i.template!.updated_by ?? "")), "every revision names its writer's key id");

  // A revision stored before today's checks (written around the API) cannot come back.
  const key = templateKey("order.cancelled", "wechat", "zh-CN");
  const legacyRev = await nats.topology.buckets.templates.put(
    key,
    JSON.stringify({ ...paidTemplate({ event: "order.cancelled" }), payload_schema: { $async: true, type: "object" }, enabled: true, updated_at: new Date().toISOString() }),
  );
  await http("POST", "/notifications/templates", paidTemplate({ event: "order.cancelled", template_id: "TPL_CANCEL_OK" }));
  const legacy = await http("POST", "/notifications/templates/order.cancelled/wechat/zh-CN/rollback", { revision: legacyRev });
  t.equal(legacy.status, 409, "a revision that no longer compiles: 409");
  t.match(legacy.body.message, /\$async/);

  const noKey = await fetch(`${base}${one}/rollback`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ revision: rev1 }) });
  t.equal(noKey.status, 401, "auth required");
});
