// NATS credentials of every kind, from env-style config (the README's operator contract: NATS_USER/NATS_PASS,
// NATS_TOKEN, NATS_NKEY_SEED, NATS_CREDS, TLS files): one nats-server per kind, since a
// server takes one authorization block. Split from security.test.ts so both run in parallel.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { Type } from "typebox";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { connect, nkeys } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { loadConfig, NatsEnv } from "@notify/config";
import { connectNats, connectionOptions, type NatsSettings } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { startSimulator } from "@notify/wechat-simulator";
import { Processes, workerEnv } from "../support/chaos.js";

const secret = (label: string) => `${label}-${randomBytes(12).toString("hex")}`;

/**
 * Operator mode, as NGS or an `nsc`-managed cluster runs it: an operator, its system
 * account and an application account allowed JetStream, resolved from memory. Returns
 * the server's config, a .creds file (user JWT + seed) of the application account, and
 * one of an account the server does not know.
 */
async function operatorMode(dir: string) {
  const op = nkeys.createOperator();
  const sys = nkeys.createAccount();
  const app = nkeys.createAccount();
  // An account's limits replace the defaults as a whole: leaving one out means 0.
  const unlimited = { conn: -1, leaf: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true };
  const jetstream = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
  const signer = { signer: op.getSeed() };
  const operatorJwt = await encodeOperator("chaos-operator", op.getSeed(), { system_account: sys.getPublicKey() });
  const sysJwt = await encodeAccount("SYS", sys.getSeed(), { limits: unlimited }, signer);
  const appJwt = await encodeAccount("APP", app.getSeed(), { limits: { ...unlimited, ...jetstream } }, signer);
  const credsOf = async (account: ReturnType<typeof nkeys.createAccount>, file: string) => {
    const user = nkeys.createUser();
    const creds = fmtCreds(await encodeUser("notify", user.getSeed(), account.getSeed()), user);
    writeFileSync(path.join(dir, file), creds, { mode: 0o600 });
    return { file: path.join(dir, file), seed: new TextDecoder().decode(user.getSeed()) };
  };
  return {
    conf: [
      `operator: ${operatorJwt}`,
      `system_account: ${sys.getPublicKey()}`,
      "resolver: MEMORY",
      `resolver_preload: { ${sys.getPublicKey()}: ${sysJwt}, ${app.getPublicKey()}: ${appJwt} }`,
    ].join("\n"),
    creds: await credsOf(app, "notify.creds"),
    stranger: await credsOf(nkeys.createAccount(), "stranger.creds"),
  };
}

t.test("security - NATS credentials from config: user/password, token, nkey, creds (JWT), TLS (mutual)", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "chaos-tls-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=chaos-test-ca");
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"],
    ["client", "extendedKeyUsage=clientAuth\n"],
  ] as const) {
    ssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(f(`${name}.ext`), ext);
    ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  }
  const user = nkeys.createUser();
  const seedFile = f("user.nk");
  writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()) + "\n", { mode: 0o600 });
  const token = secret("tok");
  const pass = secret("pw");
  const jwt = await operatorMode(dir);

  // `process`: also start a real sender with these variables (user/password is already
  // proven by the full run above, where all four services connect with it).
  const kinds: { name: string; conf: string; env: Record<string, string>; bad: Record<string, string>; process?: boolean }[] = [
    { name: "user/password", conf: `authorization { user: svc, password: "${pass}" }`, env: { NATS_USER: "svc", NATS_PASS: pass }, bad: { NATS_USER: "svc", NATS_PASS: "wrong" } },
    { name: "token", conf: `authorization { token: "${token}" }`, env: { NATS_TOKEN: token }, bad: { NATS_TOKEN: "wrong" } },
    { name: "creds (operator mode, JWT)", conf: jwt.conf, env: { NATS_CREDS: jwt.creds.file }, process: true, bad: { NATS_CREDS: jwt.stranger.file } },
    { name: "nkey (seed file)", conf: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }`, env: { NATS_NKEY_SEED: seedFile }, process: true, bad: { NATS_NKEY_SEED: new TextDecoder().decode(nkeys.createUser().getSeed()) } },
    {
      name: "TLS with a client certificate",
      conf: `tls { cert_file: "${f("server.pem")}", key_file: "${f("server.key")}", ca_file: "${f("ca.pem")}", verify: true, timeout: 5 }`,
      env: { NATS_TLS_CA: f("ca.pem"), NATS_TLS_CERT: f("client.pem"), NATS_TLS_KEY: f("client.key") },
      bad: { NATS_TLS_CA: f("ca.pem") },
      process: true,
    },
  ];
  const Schema = Type.Object(NatsEnv);
  const procs = new Processes();
  t.teardown(() => procs.stopAll());
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  await Promise.all(
    kinds.map(async (k) => {
      const server = await NatsServer.start({ extraConfig: k.conf });
      t.teardown(() => server.stop());
      const settings = (extra: Record<string, string>): NatsSettings => loadConfig(Schema, { NATS_URL: server.url, ...extra });
      const nc = await connectNats(settings(k.env), `chaos-${k.name}`);
      const jsm = await jetstreamManager(nc);
      t.ok((await jsm.getAccountInfo()).streams >= 0, `${k.name}: connected from env-style config, JetStream reachable`);
      await nc.close();
      // The refusals with the same options and a short connect time-out (a TLS handshake
      // without a client certificate otherwise waits out the client's 20 s default).
      const refused = (extra: Record<string, string>) => connect({ ...connectionOptions(settings(extra), "chaos-refused"), timeout: 3000 });
      await t.rejects(refused(k.bad), `${k.name}: wrong credentials are refused`);
      await t.rejects(refused({}), `${k.name}: no credentials are refused`);
      if (!k.process) return;
      const p = await procs.startReady("sender", workerEnv(server.url, sim, k.env), `sender-${k.name}`);
      t.ok(p.alive, `${k.name}: a sender process connects with the same variables and is ready`);
    }),
  );
  const all = procs.all.map((p) => p.lines.join("\n")).join("\n");
  t.notOk(all.includes(pass) || all.includes(token) || all.includes(new TextDecoder().decode(user.getSeed())) || all.includes(jwt.creds.seed), "no credential in the services' logs");
});
