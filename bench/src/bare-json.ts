/**
 * The baseline of the gateway's template routes in `npm run bench -- sendlog`: a bare
 * Fastify server answering `GET /notifications/templates` and `POST /notifications/preview`
 * with the very JSON the gateway answered (read once from the files named by
 * BARE_LIST_JSON and BARE_PREVIEW_JSON, serialised per request), with no auth, no
 * schema, no logging. The gateway's rate over this one is the cost of being a real route.
 */
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";

const list = JSON.parse(readFileSync(process.env.BARE_LIST_JSON ?? "", "utf8")) as unknown;
const preview = JSON.parse(readFileSync(process.env.BARE_PREVIEW_JSON ?? "", "utf8")) as unknown;
const app = Fastify({ logger: false });
app.get("/notifications/templates", async () => list);
app.post("/notifications/preview", async () => preview);
await app.listen({ host: "127.0.0.1", port: 0 });
process.stdout.write(`${JSON.stringify({ msg: "bare fastify listening", url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` })}\n`);
for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => void app.close().then(() => process.exit(0)));
