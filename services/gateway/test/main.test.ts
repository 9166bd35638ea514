import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { NatsServer } from "@notify/nats-server";
import { API_KEY } from "./fixtures/helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const mainJs = path.join(root, "services/gateway/dist/main.js");

// The service starts from its build output (the README's operator contract): make sure it is current.
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const build = spawnSync(process.execPath, [tsc, "-b", "services/gateway"], { cwd: root, encoding: "utf8" });
if (build.status !== 0) throw new Error(`tsc -b services/gateway failed:\n${build.stdout}${build.stderr}`);

const server = await NatsServer.start();
t.teardown(() => server.stop());

interface Run {
  exit: Promise<number | null>;
  output: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
  kill: (signal: NodeJS.Signals) => void;
}

function start(env: Record<string, string>): Run {
  // SENDLOG off: no embedded PGlite under ./data for a boot test.
  const child = spawn(process.execPath, [mainJs], { cwd: root, env: { PATH: process.env.PATH ?? "", SENDLOG: "off", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    exit,
    output: () => out,
    kill: (s) => child.kill(s),
    waitFor: (re, ms = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${re} in:\n${out}`));
        }, ms);
        waiters.add(check);
        void exit.then(() => setTimeout(() => reject(new Error(`exited before ${re}:\n${out}`)), 50));
        check();
      }),
  };
}

t.test("gateway - main refuses to start without GATEWAY_API_KEYS, naming the variable", async (t) => {
  const run = start({ NATS_URL: server.url });
  t.equal(await run.exit, 1);
  t.match(run.output(), /GATEWAY_API_KEYS/);
});

t.test("gateway - main boots on NATS, prints the Swagger URL and drains on SIGTERM", async (t) => {
  const run = start({ NATS_URL: server.url, NATS_REPLICAS: "1", GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: "0", GATEWAY_API_KEYS: API_KEY, LOG_LEVEL: "info" });
  t.teardown(() => run.kill("SIGKILL"));
  const [, base] = await run.waitFor(/Swagger UI: (http:\/\/127\.0\.0\.1:\d+)\/docs/);
  const ready = await fetch(`${base}/readyz`);
  t.equal(ready.status, 200, "ready: NATS connected, topology ensured");
  const list = await fetch(`${base}/notifications/templates`, { headers: { authorization: `Bearer ${API_KEY}` } });
  t.equal(list.status, 200);
  t.equal((await fetch(`${base}/notifications/templates`)).status, 401);
  t.equal((await fetch(`${base}/docs/`)).status, 200, "Swagger UI served");

  run.kill("SIGTERM");
  t.equal(await run.exit, 0, "SIGTERM drains and exits 0");
  t.match(run.output(), /"msg":"stopped"/);
  t.notMatch(run.output(), API_KEY, "the key never reaches the log");
});
