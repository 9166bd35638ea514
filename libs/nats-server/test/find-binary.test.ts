import t from "tap";
import fc from "fast-check";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  NatsServerNotFoundError,
  canDownload,
  compareVersions,
  findNatsServer,
  isSupportedVersion,
  locateNatsServer,
  natsServerVersion,
} from "@notify/nats-server";

// The order and version rules are checked with small executables that answer `--version`
// like nats-server does (the finder only ever runs `--version` on a candidate); the real
// binaries and the real download are checked at the end of this file and by every test
// that starts a server.
const root = mkdtempSync(path.join(tmpdir(), "find-nats-"));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

function fakeServer(dir: string, output: string, exitCode = 0): string {
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, "nats-server");
  writeFileSync(p, `#!/bin/sh\necho '${output}'\nexit ${exitCode}\n`);
  chmodSync(p, 0o755);
  return p;
}

const old = fakeServer(path.join(root, "old"), "nats-server: v2.9.10");
const cur = fakeServer(path.join(root, "cur"), "nats-server: v2.10.27");
const broken = fakeServer(path.join(root, "broken"), "segfault", 139);
const emptyCache = path.join(root, "no-cache");
const noExtra = { extraDirs: [], download: false, cacheDir: emptyCache };

t.test("finder - NATS_SERVER_BIN wins, whatever its version, and is logged with a warning when old", async (t) => {
  const logs: string[] = [];
  const f = findNatsServer({ ...noExtra, env: { NATS_SERVER_BIN: old, PATH: path.dirname(cur) }, log: (m) => logs.push(m) });
  t.same(f, { path: old, version: "2.9.10", source: "NATS_SERVER_BIN" });
  t.match(logs[0], /nats-server: v2\.9\.10 at .*old\/nats-server \(from NATS_SERVER_BIN\)/);
  t.match(logs[1], /WARNING: nats-server v2\.9\.10 is older than 2\.10\.0/);
});

t.test("finder - a NATS_SERVER_BIN that is not executable is an error naming it", async (t) => {
  t.throws(() => findNatsServer({ ...noExtra, env: { NATS_SERVER_BIN: "/nonexistent/nats-server" } }), {
    name: "NatsServerNotFoundError",
    message: /NATS_SERVER_BIN=\/nonexistent\/nats-server is not an executable file[\s\S]*releases/,
  });
  t.throws(() => locateNatsServer({ ...noExtra, env: { NATS_SERVER_BIN: "/nonexistent/nats-server" } }), NatsServerNotFoundError);
});

t.test("finder - the project cache, newest version first, comes before the PATH", async (t) => {
  const cache = path.join(root, "cache");
  fakeServer(path.join(cache, "v2.10.5/usr/sbin"), "nats-server: v2.10.5");
  const newest = fakeServer(path.join(cache, "v2.10.27/usr/sbin"), "nats-server: v2.10.27");
  fakeServer(path.join(cache, "v2.9.100/usr/sbin"), "nats-server: v2.9.100");
  mkdirSync(path.join(cache, ".unpack-123/usr/sbin"), { recursive: true }); // an interrupted unpack is ignored
  const f = findNatsServer({ ...noExtra, cacheDir: cache, env: { PATH: path.dirname(cur) } });
  t.same(f, { path: newest, version: "2.10.27", source: "cache" });
});

t.test("finder - on the PATH a 2.10+ server is preferred over an older one found first", async (t) => {
  const logs: string[] = [];
  const env = { PATH: [path.dirname(broken), path.dirname(old), path.dirname(cur)].join(path.delimiter) };
  const f = findNatsServer({ ...noExtra, env, log: (m) => logs.push(m) });
  t.same(f, { path: cur, version: "2.10.27", source: "PATH" });
  t.equal(logs.length, 1, "no warning for 2.10");
});

t.test("finder - only an old server: used with a warning when the download is not possible", async (t) => {
  const logs: string[] = [];
  const f = findNatsServer({ ...noExtra, env: { PATH: path.dirname(old) }, log: (m) => logs.push(m) });
  t.same(f, { path: old, version: "2.9.10", source: "PATH" });
  t.match(logs.join("\n"), /WARNING: nats-server v2\.9\.10 is older/);
});

t.test("finder - nothing usable: a clear message saying how to get nats-server", async (t) => {
  const env = { PATH: [path.dirname(broken), path.join(root, "missing")].join(path.delimiter) };
  t.throws(() => findNatsServer({ ...noExtra, env }), {
    name: "NatsServerNotFoundError",
    message: /nats-server \(2\.10 or later\) was not found[\s\S]*NATS_SERVER_BIN[\s\S]*brew install nats-server[\s\S]*docker run/,
  });
  t.equal(locateNatsServer({ ...noExtra, env }), null, "locate reports absence as null");
});

t.test("finder - versions", async (t) => {
  t.equal(natsServerVersion(cur), "2.10.27");
  t.equal(natsServerVersion(broken), null, "a binary that fails --version is not a candidate");
  t.equal(natsServerVersion(fakeServer(path.join(root, "odd"), "hello")), "unknown");
  t.notOk(isSupportedVersion("unknown"));
  t.ok(isSupportedVersion("2.10.0"));
  t.ok(isSupportedVersion("2.11.1"));
  t.ok(isSupportedVersion("3.0.0"));
  t.notOk(isSupportedVersion("2.9.25"));
  // Numeric, not lexical: 2.10 > 2.9, and consistent with ordering the number triples.
  const v = fc.tuple(fc.nat(30), fc.nat(30), fc.nat(30));
  fc.assert(
    fc.property(v, v, ([a, b, c], [x, y, z]) => {
      const expected = Math.sign(a - x || b - y || c - z);
      const got = Math.sign(compareVersions(`${a}.${b}.${c}`, `${x}.${y}.${z}`));
      const back = Math.sign(compareVersions(`${x}.${y}.${z}`, `${a}.${b}.${c}`));
      return got === expected && back === -expected;
    }),
  );
  t.ok(compareVersions("unknown", "0.0.0") < 0 && compareVersions("0.0.0", "unknown") > 0);
});

t.test("finder - the real binary this machine resolves to runs and reports its version", async (t) => {
  const logs: string[] = [];
  const f = findNatsServer({ download: false, log: (m) => logs.push(m) });
  t.match(f.version, /^\d+\.\d+\.\d+$/);
  t.match(logs[0], new RegExp(`nats-server: v${f.version.replace(/\./g, "\\.")} at `));
});

// The download path for real (Debian's archive, apt-get, dpkg-deb) where this machine allows
// it, which is what a fresh CI machine relies on; elsewhere the finder must not try it.
t.test("finder - downloads Debian trixie's nats-server into an empty cache and then finds it there", async (t) => {
  const cache = path.join(root, "download-cache");
  if (!canDownload()) {
    t.throws(() => findNatsServer({ extraDirs: [], cacheDir: cache, env: { PATH: "" } }), NatsServerNotFoundError, "no download attempt without root on Debian");
    return;
  }
  const logs: string[] = [];
  const f = findNatsServer({ extraDirs: [], cacheDir: cache, env: { PATH: "" }, log: (m) => logs.push(m) });
  t.equal(f.source, "download");
  t.ok(isSupportedVersion(f.version), `downloaded v${f.version} is 2.10 or later`);
  t.equal(f.path, path.join(cache, `v${f.version}`, "usr/sbin/nats-server"));
  t.match(logs.join("\n"), /downloading Debian trixie's package/);
  const again = findNatsServer({ extraDirs: [], cacheDir: cache, env: { PATH: "" }, download: false });
  t.same(again, { ...f, source: "cache" }, "the second lookup is served by the cache");
});
