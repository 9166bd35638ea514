import t from "tap";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { sendIdFor } from "@notify/contracts";
import { orderSendId } from "../../load/lib/send-id.js";
import { createHash } from "node:crypto";
import { ROOT, readText } from "./support.js";

// The same compiler `npx tsc` would run, resolved from the workspace (no network, no npx noise).
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

t.test("k6 - the load scripts type-check against @types/k6 (tsc -p load/tsconfig.json)", async (t) => {
  const r = spawnSync(process.execPath, [tsc, "-p", "load/tsconfig.json"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  t.equal(r.status, 0, `tsc -p load/tsconfig.json:\n${r.stdout}${r.stderr}`);
});

t.test("k6 - the pipeline script derives the same send_id as the dispatcher", async (t) => {
  const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");
  for (const order_id of ["LT-abc-delivery-0", "O-1001", "x_y-9"]) {
    t.equal(
      orderSendId(sha256Hex, "order.paid", order_id),
      sendIdFor({ event: "order.paid", order_id, ticket_id: null, channel: "wechat" }),
      order_id,
    );
  }
  t.throws(() => orderSendId(sha256Hex, "order.paid", "O 1"), /order id/, "ids that the key encoding would change are refused");
});

t.test("k6 - the scripts use arrival-rate scenarios, the bearer key and thresholds that fail the run", async (t) => {
  const common = readText("load", "lib", "common.ts");
  t.match(common, /__ENV\.BASE_URL \|\| "http:\/\/127\.0\.0\.1:3000"/, "BASE_URL from -e, default the local gateway");
  t.match(common, /Authorization: `Bearer \$\{API_KEY\}`/, "Authorization: Bearer ${API_KEY}");
  t.match(common, /__ENV\.API_KEY/, "API_KEY from -e");
  const read = readText("load", "gateway-read.ts");
  t.match(read, /executor: "constant-arrival-rate"/);
  t.match(read, /\/notifications\/templates/);
  t.match(read, /\/notifications\/preview/);
  const pipeline = readText("load", "pipeline.ts");
  t.match(pipeline, /\/notifications\/events/);
  t.match(pipeline, /executor: "constant-arrival-rate"/);
  for (const [name, src] of [["gateway-read.ts", read], ["pipeline.ts", pipeline]] as const) {
    t.match(src, /thresholds: \{/, `${name}: thresholds`);
    t.match(src, /http_req_failed[^\n]*rate</, `${name}: error-rate threshold`);
    t.match(src, /http_req_duration[^\n]*p\(95\)</, `${name}: p95 latency threshold`);
  }
});
