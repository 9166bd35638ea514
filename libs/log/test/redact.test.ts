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
