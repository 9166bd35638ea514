import t from "tap";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// A service run by hand (stdout a terminal) logs through pino-pretty; piped, it logs JSON.
const DIST = fileURLToPath(new URL("../dist/index.js", import.meta.url));
const program = `import(${JSON.stringify(DIST)}).then(({ createLogger }) => createLogger({ name: "gateway" }).info({ method: "GET", url: "/x?token=abc", status: 404, reason: "not found" }, "request"))`;

t.test("log - JSON when stdout is a pipe", async (t) => {
  const r = spawnSync(process.execPath, ["-e", program], { encoding: "utf8" });
  const line = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
  t.match(line, { level: "info", service: "gateway", msg: "request", status: 404, reason: "not found" });
});

t.test("log - pino-pretty when stdout is a terminal, secrets still redacted", { skip: existsSync("/usr/bin/script") ? false : "util-linux script(1) is needed for a pseudo-terminal" }, async (t) => {
  const cmd = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(program).replace(/\$/g, "\\$")}`;
  const r = spawnSync("/usr/bin/script", ["-qec", cmd, "/dev/null"], { encoding: "utf8" });
  const out = r.stdout.replace(/\x1b\[[0-9;]*m/g, "");
  t.notMatch(out, /^\{/m, "not a JSON line");
  t.match(out, /INFO.*request/, "level and message first");
  t.match(out, /"status":404/);
  t.match(out, /"reason":"not found"/, "the 4xx reason is on the line");
  t.notMatch(out, "abc", "the query secret is redacted before formatting");
});
