import t from "tap";
import { appFor, startNats } from "./fixtures/helpers.js";

const nats = await startNats(t);

t.test("swagger UI - cannot damage data by default: Try it out off, authorization kept across reloads", async (t) => {
  const app = await appFor(t, nats);
  const res = await app.inject({ method: "GET", url: "/docs/static/swagger-initializer.js" });
  t.equal(res.statusCode, 200);
  const config = /const config = (\{.*?\})\n/s.exec(res.body)?.[1];
  t.ok(config, "the UI config is served");
  const ui = JSON.parse(config!) as Record<string, unknown>;
  t.equal(ui.tryItOutEnabled, false, "Try it out is off until clicked");
  t.equal(ui.persistAuthorization, true, "the key survives a reload");
});
