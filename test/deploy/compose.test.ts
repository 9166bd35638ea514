import t from "tap";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import {
  METRICS_PORT as DEFAULT_METRICS_PORT,
  SERVICES,
  WORKERS,
  at,
  composeDefault,
  composeBinary,
  envOf,
  get,
  isObj,
  listAt,
  mainOf,
  natsBlock,
  natsConfText,
  natsRoutes,
  natsServer,
  natsTopLevel,
  natsValue,
  objAt,
  run,
  syncIntervalMs,
  type Obj,
} from "./support.js";

const SIMULATOR = "wechat-simulator";
const METRICS_PORT = String(DEFAULT_METRICS_PORT);

/** The model as written (merge keys resolved), and Compose's own model when the CLI works. */
// Parsed as Compose reads it with no variables set: `${VAR:-default}` becomes the default.
const composeText = readFileSync(at("docker-compose.yml"), "utf8");
const models: { source: string; model: Obj }[] = [{ source: "parsed", model: parseYaml(composeText.replace(/\$\{\w+:-([^}]*)\}/g, "$1"), { merge: true }) as Obj }];
const compose = composeBinary();
const composeSkip = "unavailable" in compose ? compose.unavailable : null;
const composeConfig = "bin" in compose ? run(compose.bin, ["-f", "docker-compose.yml", "config", "--format", "json"]) : null;
if (composeConfig?.ok) models.push({ source: "docker compose config", model: JSON.parse(composeConfig.stdout) as Obj });

const services = (m: Obj): Obj => objAt(m, "services");
const natsNodes = (m: Obj): [string, Obj][] =>
  Object.entries(services(m)).filter((e): e is [string, Obj] => isObj(e[1]) && String(e[1].image ?? "").startsWith("nats:"));
const commandOf = (svc: unknown): string[] => {
  const c = get(svc, "command");
  return Array.isArray(c) ? c.map(String) : typeof c === "string" ? c.split(/\s+/) : [];
};
const healthTest = (svc: unknown): string => {
  const test = get(svc, "healthcheck", "test");
  return Array.isArray(test) ? test.map(String).join(" ") : String(test ?? "");
};

/** The config file a NATS node starts with, read from deploy/nats/ on this disk. */
function nodeConfig(svc: Obj): { file: string; text: string } {
  const cmd = commandOf(svc);
  const i = cmd.findIndex((a) => a === "--config" || a === "-c");
  const inContainer = cmd[i + 1] ?? "";
  const mount = listAt(svc, "volumes")
    .map((v) => (typeof v === "string" ? v.split(":") : [String(get(v, "source")), String(get(v, "target"))]))
    .find(([, target]) => target !== undefined && inContainer.startsWith(`${target}/`));
  if (!mount?.[0] || !mount[1]) throw new Error(`no volume provides ${inContainer}`);
  const host = path.resolve(at(), mount[0], path.relative(mount[1], inContainer));
  return { file: host, text: natsConfText(host) };
}

// Skipped only on a machine that cannot get Compose; in CI a missing Compose fails.
t.test("compose - docker compose config accepts the file", { skip: process.env.CI ? false : (composeSkip ?? false) }, async (t) => {
  t.notOk(composeSkip, composeSkip ?? "Compose v2 found");
  t.ok(composeConfig?.ok, `docker compose config: ${composeConfig?.stderr ?? ""}`);
  t.ok(models.some((m) => m.source === "docker compose config"), "the resolved model is checked below too");
});

for (const { source, model } of models) {
  t.test(`compose (${source}) - three NATS nodes with unique server names and routes to each other`, async (t) => {
    const nodes = natsNodes(model);
    t.equal(nodes.length, 3, "three NATS services");
    const names = new Set<string>();
    const hosts = nodes.map(([name, svc]) => String(svc.hostname ?? name));
    for (const [name, svc] of nodes) {
      t.match(String(svc.image), /^nats:2\.1\d/, `${name}: nats-server 2.10+ (sync_interval needs it)`);
      const { file, text } = nodeConfig(svc);
      t.ok(file.startsWith(at("deploy", "nats")), `${name}: config under deploy/nats/`);
      const serverName = natsValue(natsTopLevel(text), "server_name");
      t.ok(serverName, `${name}: server_name set`);
      if (serverName) names.add(serverName);
      const cluster = natsBlock(text, "cluster");
      t.ok(cluster, `${name}: cluster block`);
      const clusterPort = natsValue(cluster ?? "", "port") ?? natsValue(cluster ?? "", "listen")?.split(":").pop();
      const routes = natsRoutes(cluster ?? "").map((u) => new URL(u.replace(/^nats-route:/, "nats:")));
      const self = String(svc.hostname ?? name);
      for (const other of hosts.filter((h) => h !== self)) {
        t.ok(
          routes.some((u) => u.hostname === other && u.port === clusterPort),
          `${name}: routes to ${other}:${clusterPort}`,
        );
      }
      t.equal(natsValue(natsTopLevel(text), "http_port") ?? natsValue(natsTopLevel(text), "http")?.split(":").pop(), "8222", `${name}: monitoring on 8222`);
    }
    t.equal(names.size, 3, "server names are unique");
  });

  t.test(`compose (${source}) - JetStream is enabled with sync_interval set on every node`, async (t) => {
    for (const [name, svc] of natsNodes(model)) {
      const { text } = nodeConfig(svc);
      const js = natsBlock(text, "jetstream");
      t.ok(js, `${name}: jetstream block`);
      t.ok(natsValue(js ?? "", "store_dir"), `${name}: file store directory`);
      const sync = natsValue(js ?? "", "sync_interval");
      t.ok(sync, `${name}: sync_interval present`);
      const ms = syncIntervalMs(sync ?? "");
      t.ok(ms !== undefined && ms <= 10_000, `${name}: sync_interval is always or a short interval (got ${sync})`);
      t.ok(
        listAt(svc, "volumes").some((v) => (typeof v === "string" ? v.includes(":/data") : get(v, "target") === "/data")),
        `${name}: the store is on a volume`,
      );
    }
    const shared = readFileSync(at("deploy", "nats", "cluster.conf"), "utf8");
    t.match(shared, /Jepsen/, "the sync_interval trade-off is explained next to the setting");
  });

  t.test(`compose (${source}) - services are built from the one Dockerfile and started by command`, async (t) => {
    const svcs = services(model);
    const images = new Set<string>();
    for (const name of [...SERVICES, SIMULATOR]) {
      const svc = svcs[name];
      t.ok(isObj(svc), `${name} is defined`);
      const build = get(svc, "build");
      const context = isObj(build) ? String(build.context) : String(build);
      t.equal(path.resolve(at(), context), path.resolve(at()), `${name}: build context is the repository root`);
      t.equal(path.basename(String(get(svc, "build", "dockerfile") ?? "Dockerfile")), "Dockerfile", `${name}: the one Dockerfile`);
      images.add(String(get(svc, "image")));
      const cmd = commandOf(svc);
      const main = name === SIMULATOR ? "tools/wechat-simulator/dist/main.js" : mainOf(name);
      t.same(cmd, ["node", main], `${name}: node ${main}`);
      t.ok(existsSync(at(path.dirname(path.dirname(main)), "package.json")), `${name}: ${path.dirname(path.dirname(main))} is a workspace`);
    }
    t.equal(images.size, 1, "one image tag for every service");
    t.ok(existsSync(at("Dockerfile")), "Dockerfile exists");
  });

  t.test(`compose (${source}) - sender has replicas and no fixed host ports`, async (t) => {
    const sender = objAt(model, "services", "sender");
    t.notOk(sender.ports, "no published ports (they would collide when scaled)");
    t.notOk(sender.container_name, "no container_name (it must be unique)");
    t.ok(Number(get(sender, "deploy", "replicas")) >= 2, "deploy.replicas >= 2");
    for (const name of WORKERS) {
      t.notOk(objAt(model, "services", name).container_name, `${name}: no container_name`);
    }
  });

  t.test(`compose (${source}) - healthchecks hit /readyz on each service's own port`, async (t) => {
    const svcs = services(model);
    for (const name of WORKERS) {
      const env = envOf(svcs[name]);
      t.equal(env.METRICS_PORT ?? METRICS_PORT, METRICS_PORT, `${name}: METRICS_PORT is the default ${METRICS_PORT}`);
      t.match(healthTest(svcs[name]), new RegExp(`127\\.0\\.0\\.1:${env.METRICS_PORT ?? METRICS_PORT}/readyz`), `${name}: probes /readyz on METRICS_PORT`);
    }
    const gw = envOf(svcs.gateway);
    t.equal(gw.GATEWAY_PORT, "3000", "gateway: GATEWAY_PORT 3000");
    t.match(healthTest(svcs.gateway), new RegExp(`127\\.0\\.0\\.1:${gw.GATEWAY_PORT}/readyz`), "gateway: probes /readyz on GATEWAY_PORT");
    t.ok(
      listAt(svcs.gateway, "ports").some((p) =>
        typeof p === "string" ? composeDefault(p).endsWith(`:${gw.GATEWAY_PORT}`) : String(get(p, "target")) === gw.GATEWAY_PORT,
      ),
      "gateway: its port is published",
    );
    t.match(healthTest(svcs[SIMULATOR]), /127\.0\.0\.1:8090\//, "simulator: probed on SIM_PORT 8090");
    for (const [name, svc] of natsNodes(model)) t.match(healthTest(svc), /:8222\/healthz/, `${name}: probes /healthz on 8222`);
  });

  t.test(`compose (${source}) - services wait for a healthy NATS cluster and use R3 streams`, async (t) => {
    const svcs = services(model);
    const nodes = natsNodes(model).map(([n]) => n);
    for (const name of SERVICES) {
      const deps = objAt(svcs[name], "depends_on");
      for (const node of nodes) t.equal(get(deps, node, "condition"), "service_healthy", `${name} waits for ${node}`);
      const env = envOf(svcs[name]);
      t.equal(env.NATS_REPLICAS, "3", `${name}: NATS_REPLICAS=3`);
      const urls = (env.NATS_URL ?? "").split(",").map((u) => new URL(u.trim()).hostname);
      t.same([...urls].sort(), [...nodes].sort(), `${name}: NATS_URL lists every node`);
    }
    t.equal(get(svcs.sender, "depends_on", SIMULATOR, "condition"), "service_healthy", "sender waits for the simulator");
  });

  t.test(`compose (${source}) - the projector fills PostgreSQL and the gateway reads it`, async (t) => {
    const svcs = services(model);
    const pg = envOf(svcs.postgres);
    t.ok(pg.POSTGRES_USER && pg.POSTGRES_DB, "postgres: user and database named");
    t.match(healthTest(svcs.postgres), /pg_isready/, "postgres: health is pg_isready");
    for (const name of ["projector", "gateway"]) {
      const url = new URL(envOf(svcs[name]).DATABASE_URL ?? "postgres://unset");
      t.equal(url.hostname, "postgres", `${name}: DATABASE_URL points at the postgres service`);
      t.equal(url.username, pg.POSTGRES_USER, `${name}: as POSTGRES_USER`);
      t.equal(decodeURIComponent(url.password), pg.POSTGRES_PASSWORD, `${name}: with POSTGRES_PASSWORD`);
      t.equal(url.pathname, `/${pg.POSTGRES_DB}`, `${name}: database POSTGRES_DB`);
      t.equal(get(svcs[name], "depends_on", "postgres", "condition"), "service_healthy", `${name} waits for a healthy postgres`);
    }
    t.notOk(get(svcs.projector, "deploy", "replicas"), "projector: one (its consumers are one per database)");
  });

  t.test(`compose (${source}) - senders reach the simulator with its credentials`, async (t) => {
    const svcs = services(model);
    const sender = envOf(svcs.sender);
    const sim = envOf(svcs[SIMULATOR]);
    t.equal(sender.WECHAT_API_BASE, `http://${SIMULATOR}:${sim.SIM_PORT}`, "WECHAT_API_BASE is the simulator");
    t.equal(sender.WECHAT_APP_ID, sim.WECHAT_APP_ID, "same app id");
    t.equal(sender.WECHAT_APP_SECRET, sim.WECHAT_APP_SECRET, "same app secret");
    t.equal(sim.SIM_HOST, "0.0.0.0", "the simulator listens beyond its container's loopback");
  });
}

const server = natsServer();
t.test("compose - the NATS config files are accepted by nats-server -t", { skip: server ? false : "nats-server not found: parsed only" }, async (t) => {
  if (!server) return;
  const dir = mkdtempSync(path.join(tmpdir(), "deploy-nats-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(at("deploy", "nats"), dir, { recursive: true });
  const old = server.major === 2 && server.minor < 10;
  if (old) {
    // 2.9 rejects sync_interval ("unknown field"); check everything else with it.
    for (const f of readdirSync(dir)) {
      const p = path.join(dir, f);
      writeFileSync(p, readFileSync(p, "utf8").replace(/^\s*sync_interval\s*[:=].*$/gm, ""));
    }
  }
  for (const f of readdirSync(dir).filter((f) => /^nats-\d\.conf$|^local\.conf$/.test(f))) {
    const r = run(server.bin, ["-c", path.join(dir, f), "-t"], { timeoutMs: 10_000 });
    t.ok(r.ok, `${f} is valid for nats-server ${server.major}.${server.minor}${old ? " (sync_interval removed for 2.9)" : ""}: ${r.stderr}${r.stdout}`);
  }
});

t.test("compose - the single-node local config documents sync_interval and keeps data in ./data", async (t) => {
  const raw = readFileSync(at("deploy", "nats", "local.conf"), "utf8");
  const text = natsConfText(at("deploy", "nats", "local.conf"));
  t.ok(natsBlock(text, "jetstream"), "JetStream enabled");
  t.match(natsValue(natsBlock(text, "jetstream") ?? "", "store_dir") ?? "", /^\.\/data\//, "store under the ignored data folder");
  t.match(raw, /sync_interval/, "sync_interval is documented");
  t.match(readFileSync(at(".gitignore"), "utf8"), /^data\/$/m, "data/ is ignored by git");
});

t.test("compose - base images are variables with public defaults (offline runs point them at local images)", async (t) => {
  for (const [v, def] of [["NATS_IMAGE", "nats:2.10-alpine"], ["NODE_IMAGE", "node:20-bookworm-slim"], ["APP_IMAGE", "notify-orchestrator:local"], ["POSTGRES_IMAGE", "postgres:16-alpine"]]) {
    t.ok(composeText.includes(`\${${v}:-${def}}`), `\${${v}:-${def}}`);
  }
  t.match(readFileSync(at("Dockerfile"), "utf8"), /^ARG NODE_IMAGE=node:20-bookworm-slim$/m, "the Dockerfile's base is the NODE_IMAGE build argument");
});
