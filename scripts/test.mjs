#!/usr/bin/env node
// The README's test command runs this after `tsc -b`: make sure nats-server is there
// (installing the Debian package when possible), run tap, and end with one plain
// "N passed, N failed" line that any CI log reader understands.
import { spawn } from "node:child_process";
import { ensureNatsServer } from "../libs/nats-server/dist/index.js";

try {
  const bin = ensureNatsServer({ log: (m) => console.log(m) });
  process.env.NATS_SERVER_BIN ??= bin;
} catch (err) {
  console.error(err.message);
  process.exit(1);
}

const child = spawn("npx", ["tap", ...process.argv.slice(2)], { stdio: ["ignore", "pipe", "inherit"] });
let summary = null;
let tail = "";
child.stdout.on("data", (b) => {
  process.stdout.write(b);
  tail = (tail + b.toString()).slice(-4096);
  const m = /# \{ (total: \d+[^}]*)\}/.exec(tail);
  if (m) summary = Object.fromEntries(m[1].split(",").map((kv) => kv.split(":").map((x) => x.trim())).map(([k, v]) => [k, Number(v)]));
});
child.on("exit", (code) => {
  if (summary) {
    const { pass = 0, fail = 0, skip = 0, todo = 0 } = summary;
    console.log(`tests: ${pass} passed, ${fail} failed, ${skip + todo} skipped`);
  } else {
    console.log(`tests: 0 passed, 1 failed (tap printed no summary)`);
  }
  process.exit(code ?? 1);
});
