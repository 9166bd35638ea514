import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { chromium } from "playwright-core";
import { API_KEY, AUTH, appFor, paidTemplate, startNats } from "./fixtures/helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const screenshot = path.join(root, "reports/screenshots/swagger-ui.png");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Without these Chromium tries the network at start-up and hangs on a machine without one.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

t.test("gateway - Swagger UI in a real browser: authorize, run GET /notifications/templates, see the response", async (t) => {
  if (!existsSync(executablePath)) {
    t.fail(`Chromium not found at ${executablePath}: install Debian's package (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH`);
    return;
  }
  const nats = await startNats(t);
  const app = await appFor(t, nats);
  const created = await app.inject({ method: "POST", url: "/notifications/templates", headers: AUTH, payload: paidTemplate({ template_id: "TPL_FROM_THE_BROWSER_TEST" }) });
  t.equal(created.statusCode, 201);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  const userDataDir = mkdtempSync(path.join(tmpdir(), "chromium-profile-"));
  t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }));
  // launch() refuses --user-data-dir; a persistent context on a fresh directory is the same thing.
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, timeout: 60_000, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 1400 } });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(45_000); // generous: CI machines run many test files at once
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  const apiRequests: { url: string; authorization: string | undefined }[] = [];
  page.on("request", (r) => {
    if (r.url().includes("/notifications/")) apiRequests.push({ url: r.url(), authorization: r.headers().authorization });
  });

  await page.goto(`${base}/docs`);
  await page.locator(".swagger-ui .info .title").waitFor();
  t.match(await page.locator(".swagger-ui .info .title").innerText(), /Notification orchestrator gateway/);

  // Authorize with the bearer key.
  await page.locator(".scheme-container button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.waitFor();
  await dialog.locator("input").first().fill(API_KEY);
  await dialog.locator("button.authorize").click();
  await dialog.locator("button.btn-done").click();
  await page.locator(".scheme-container button.authorize.locked").waitFor();
  t.pass("the Authorize button took the key");

  // Run GET /notifications/templates from the UI.
  const op = page.locator(".opblock.opblock-get").filter({ has: page.locator('.opblock-summary-path[data-path="/notifications/templates"]') });
  await op.locator(".opblock-summary").click();
  // "Try it out" is off by default (the gateway's UI config): click it.
  if ((await op.locator("button.execute").count()) === 0) await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor();
  t.equal((await status.innerText()).trim(), "200", "the UI shows 200");
  const body = op.locator(".live-responses-table .response-col_description pre").first();
  await body.waitFor();
  t.match(await body.innerText(), /TPL_FROM_THE_BROWSER_TEST/, "and the template in the response body");

  const call = apiRequests.find((r) => r.url === `${base}/notifications/templates`);
  t.ok(call, "the browser called the API");
  t.equal(call?.authorization, `Bearer ${API_KEY}`, "with the bearer key from the Authorize dialog");
  t.same(problems.filter((p) => /Content Security Policy|Refused to/i.test(p)), [], "no CSP violations");

  mkdirSync(path.dirname(screenshot), { recursive: true });
  await op.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: true });
  t.ok(statSync(screenshot).size > 10_000, `screenshot kept at ${path.relative(root, screenshot)}`);
});
