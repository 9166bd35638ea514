import t from "tap";
import { Writable } from "node:stream";
import { createLogger, redactUrl } from "@notify/log";

function capture() {
  const lines: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } });
  return { lines, dest };
}

t.test("log - secrets, tokens and bearer keys never reach a line", async (t) => {
  const { lines, dest } = capture();
  const log = createLogger({ name: "test", level: "debug" }, dest);
  log.info({ appSecret: "S3CRET-app", access_token: "TOK-123", req: { headers: { authorization: "Bearer KEY-abc" } } }, "call");
  log.info({ url: "https://api.weixin.qq.com/cgi-bin/message/template/send?access_token=TOK-456&x=1" }, "url");
  log.error({ err: new Error("GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=S3CRET-q failed") }, "boom");
  log.info({ config: { WECHAT_APP_SECRET: "S3CRET-cfg", GATEWAY_API_KEYS: ["KEY-def"], WECHAT_CALLBACK_TOKEN: "S3CRET-cb", WECHAT_ENCODING_AES_KEY: "S3CRET-aes" } }, "config");
  log.info({ receipts: { token: "S3CRET-tok", encodingAesKey: "S3CRET-aes2" } }, "receipt settings");
  const all = lines.join("");
  for (const secret of ["S3CRET", "TOK-", "KEY-"]) t.notMatch(all, secret, `${secret} redacted`);
  t.match(all, /x=1/, "the rest of the URL is kept");
  t.equal(redactUrl("a?token=x&b=2"), "a?token=[redacted]&b=2");
});

t.test("log - a traveller's openid or phone in a query string never reaches a line", async (t) => {
  const { lines, dest } = capture();
  const log = createLogger({ name: "test", level: "debug" }, dest);
  log.info({ url: "/notifications/sends?openid=oPERSONAL-1&status=failed" }, "request");
  log.info({ url: "/wechat/callback?signature=abc&timestamp=1&nonce=2&openid=oPERSONAL-2&encrypt_type=aes" }, "push");
  log.info({ url: "/x?Phone=%2B8613812345678&mobile=13812345678&phone_number=1381234" }, "sms");
  const all = lines.join("");
  t.notMatch(all, "PERSONAL", "openids redacted");
  t.notMatch(all, /1381234/, "phone numbers redacted");
  t.match(all, /status=failed/, "the filters that say nothing of a person are kept");
  t.match(all, /encrypt_type=aes/);
});

t.test("log - async: lines written in the background still all arrive, redacted, when the process exits", async (t) => {
  const { spawnSync } = await import("node:child_process");
  const script = [
    `import { createLogger } from "@notify/log";`,
    `const log = createLogger({ name: "test", async: true });`,
    `for (let i = 0; i < 2000; i++) log.info({ i, token: "S3CRET-" + i }, "line");`,
    `process.exit(0);`,
  ].join("\n");
  // stdout a pipe (not a terminal), as in production.
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: import.meta.dirname, encoding: "utf8" });
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { i: number; token: string });
  t.equal(lines.length, 2000, "every line flushed on exit");
  t.same(lines.map((l) => l.i), Array.from({ length: 2000 }, (_, i) => i), "in order");
  t.notMatch(r.stdout, "S3CRET", "redaction applies as before");
});
