import t from "tap";
import { existsSync } from "node:fs";
import { at, readText } from "./support.js";

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  const joined = text.replace(/\\\r?\n/g, " ");
  return joined
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const m = /^(\S+)\s*(.*)$/.exec(l);
      return { op: (m?.[1] ?? "").toUpperCase(), args: m?.[2] ?? "" };
    });
}

const ins = instructions(readText("Dockerfile"));
const stages: { from: string; ins: { op: string; args: string }[] }[] = [];
for (const i of ins) {
  if (i.op === "FROM") stages.push({ from: i.args, ins: [] });
  else stages.at(-1)?.ins.push(i);
}
const args = new Map(
  ins.filter((i) => i.op === "ARG").map((i) => {
    const [k, v] = i.args.split("=");
    return [k ?? "", v ?? ""] as const;
  }),
);
const image = (from: string) => from.split(/\s+/)[0]?.replace(/^\$\{(\w+)\}$/, (_m, n: string) => args.get(n) ?? "") ?? "";

t.test("dockerfile - a multi-stage build on node:20-bookworm-slim", async (t) => {
  t.ok(stages.length >= 2, `${stages.length} stages`);
  for (const s of stages) t.equal(image(s.from), "node:20-bookworm-slim", `FROM ${s.from}`);
});

t.test("dockerfile - builds the workspace with npm ci && npm run build and prunes dev dependencies", async (t) => {
  const runs = ins.filter((i) => i.op === "RUN").map((i) => i.args);
  const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
  const build = runs.findIndex((r) => /\bnpm run build\b/.test(r));
  const prune = runs.findIndex((r) => /\bnpm prune --omit=dev\b/.test(r));
  t.ok(ci >= 0 && build > ci && prune > build, "npm ci, then npm run build, then npm prune --omit=dev");
  t.ok(existsSync(at("package-lock.json")), "npm ci has a lockfile");
  const copies = ins.filter((i) => i.op === "COPY").map((i) => i.args);
  // One COPY of the context (few layers; test/compose/run.sh builds and runs the image for real).
  t.ok(copies.some((c) => /^\.\s+\.\/?$/.test(c)), "copies the build context");
  const ignore = readText(".dockerignore").split("\n").map((l) => l.trim());
  for (const dir of ["libs", "tools", "services", "package-lock.json"]) t.notOk(ignore.includes(dir) || ignore.includes(`${dir}/`), `${dir} is in the context`);
});

t.test("dockerfile - the runtime stage runs as non-root under tini and starts a service by command", async (t) => {
  const last = stages.at(-1);
  const user = last?.ins.filter((i) => i.op === "USER").at(-1)?.args ?? "";
  t.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user} is not root`);
  t.match(user, /^\d+(:\d+)?$/, "numeric user, so Kubernetes can verify runAsNonRoot");
  const entry = last?.ins.find((i) => i.op === "ENTRYPOINT")?.args ?? "";
  t.match(entry, /tini/, "tini is PID 1 and forwards signals");
  const cmd = JSON.parse(last?.ins.find((i) => i.op === "CMD")?.args ?? "[]") as string[];
  t.equal(cmd[0], "node");
  t.match(cmd[1] ?? "", /^services\/[\w-]+\/dist\/main\.js$/, "default command node services/<name>/dist/main.js");
  t.ok(last?.ins.some((i) => i.op === "COPY" && /--from=build/.test(i.args)), "copies the built app from the build stage");
});

t.test("dockerfile - .dockerignore keeps local installs and build output out of the context", async (t) => {
  const ignore = readText(".dockerignore").split("\n").map((l) => l.trim());
  for (const p of ["**/node_modules", "**/dist", "data", ".git"]) t.ok(ignore.includes(p), `ignores ${p}`);
});
