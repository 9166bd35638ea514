import t, { type Test } from "tap";
import { Errcode, SimulatorControl, nextBeijingMidnight, startSimulator, type Simulator } from "@notify/wechat-simulator";

const APP = { appid: "wx-limits-app", secret: "limits-secret" };

/** A simulator on a clock the test moves (WeChat's limits are about days and intervals). */
async function sim(t: Test, opts: Parameters<typeof startSimulator>[0] = {}): Promise<{ s: Simulator; clock: { now: number } }> {
  // 10:00 Beijing time (02:00 UTC) on a fixed day, so a few minutes never cross midnight by accident.
  const clock = { now: Date.UTC(2026, 5, 1, 2, 0, 0) };
  const s = await startSimulator({ appId: APP.appid, appSecret: APP.secret, clock: () => clock.now, ...opts });
  t.teardown(() => s.close());
  return { s, clock };
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function stable(s: Simulator, force: boolean): Promise<Record<string, unknown>> {
  return fetch(`${s.url}/cgi-bin/stable_token`, {
    method: "POST",
    body: JSON.stringify({ grant_type: "client_credential", appid: APP.appid, secret: APP.secret, force_refresh: force }),
  }).then(json);
}

function send(s: Simulator, tok: string, touser: string, clientMsgId?: string): Promise<Record<string, unknown>> {
  return fetch(`${s.url}/cgi-bin/message/template/send?access_token=${encodeURIComponent(tok)}`, {
    method: "POST",
    body: JSON.stringify({ touser, template_id: "TPL-1", data: { thing1: { value: "West Lake" } }, ...(clientMsgId ? { client_msg_id: clientMsgId } : {}) }),
  }).then(json);
}

function quotaGet(s: Simulator, tok: string, cgiPath = "/cgi-bin/message/template/send"): Promise<Record<string, unknown>> {
  return fetch(`${s.url}/cgi-bin/openapi/quota/get?access_token=${encodeURIComponent(tok)}`, { method: "POST", body: JSON.stringify({ cgi_path: cgiPath }) }).then(json);
}

t.test("wechat simulator - force_refresh: 30 s apart (45011), 20 a day (45009), new day resets", async (t) => {
  const { s, clock } = await sim(t);
  const first = await stable(s, true);
  t.type(first.access_token, "string", "the first force refresh is granted");
  const tooSoon = await stable(s, true);
  t.match(tooSoon, { errcode: 45011, errmsg: /^api minute-quota reach limit, must slower, retry next minute rid: / }, "29 s apart is too soon");
  t.notOk("access_token" in tooSoon);
  t.equal((await stable(s, false)).access_token, first.access_token, "normal mode is not limited and the token was not replaced");
  clock.now += 29_999;
  t.match(await stable(s, true), { errcode: 45011 }, "one ms short of 30 s is still too soon");
  clock.now += 1;
  const second = await stable(s, true);
  t.type(second.access_token, "string", "30 s later it is granted");
  t.not(second.access_token, first.access_token);
  for (let i = 2; i < 20; i++) {
    clock.now += 30_000;
    t.type((await stable(s, true)).access_token, "string");
  }
  clock.now += 30_000;
  t.match(await stable(s, true), { errcode: 45009, errmsg: /^reach max api daily quota limit rid: / }, "the 21st of the day");
  t.match(s.stats(), { forceRefreshes: 20, forceRefreshesRefused: 3 });
  clock.now = nextBeijingMidnight(clock.now);
  t.type((await stable(s, true)).access_token, "string", "midnight Beijing time starts a new count");
  t.match(s.stats(), { forceRefreshes: 21 });
});

t.test("wechat simulator - IP whitelist on the token endpoints answers 40164 in WeChat's words", async (t) => {
  const { s } = await sim(t, { ipWhitelist: ["10.9.8.7"] });
  const refused = await stable(s, false);
  t.equal(refused.errcode, Errcode.ipNotWhitelisted);
  t.match(refused.errmsg, /^invalid ip 127\.0\.0\.1 ipv6 ::ffff:127\.0\.0\.1, not in whitelist rid: [0-9a-f]{8}-simulator$/);
  const plain = await fetch(`${s.url}/cgi-bin/token?grant_type=client_credential&appid=${APP.appid}&secret=${APP.secret}`).then(json);
  t.match(plain, { errcode: 40164, errmsg: /^invalid ip 127\.0\.0\.1 / }, "cgi-bin/token too");
  // The control API changes it at run time, as an operator edits the account's whitelist.
  const ctl = new SimulatorControl(s.url);
  t.same(await fetch(`${s.url}/_sim/ip-whitelist`, { method: "POST", body: JSON.stringify({ ips: ["127.0.0.1"] }) }).then(json), { ips: ["127.0.0.1"] });
  t.type((await stable(s, false)).access_token, "string", "whitelisted: a token");
  s.setIpWhitelist(null);
  t.type((await stable(s, false)).access_token, "string", "no whitelist: a token");
  t.match(await ctl.stats(), { ipRejections: 2, tokensIssued: 1 });
});

t.test("wechat simulator - client_msg_id de-duplicates for exactly 10 minutes by default", async (t) => {
  const { s, clock } = await sim(t);
  const tok = (await stable(s, false)).access_token as string;
  const a = await send(s, tok, "o-dedup", "cm-1");
  clock.now += 10 * 60_000 - 1;
  const b = await send(s, tok, "o-dedup", "cm-1");
  t.equal(b.msgid, a.msgid, "inside 10 minutes: the first msgid, nothing sent");
  t.not((await send(s, tok, "o-other", "cm-1")).msgid, a.msgid, "per openid");
  clock.now += 1;
  const c = await send(s, tok, "o-dedup", "cm-1");
  t.not(c.msgid, a.msgid, "at 10 minutes it is a new message");
  t.match(s.stats(), { accepted: 3, duplicates: 1 });
});

t.test("wechat simulator - template quota: quota/get reports it, 45009 when spent, reset at midnight Beijing time", async (t) => {
  const { s, clock } = await sim(t, { templateDailyQuota: 3, tokenTtlSec: 86_400 });
  const tok = (await stable(s, false)).access_token as string;
  t.same(await quotaGet(s, tok), { errcode: 0, errmsg: "ok", quota: { daily_limit: 3, used: 0, remain: 3 }, rate_limit: { call_count: 0, refresh_second: 60 } });
  for (let i = 0; i < 3; i++) t.equal((await send(s, tok, "o-q", `q-${i}`)).errcode, 0);
  t.equal((await send(s, tok, "o-q", "q-1")).errcode, 0, "a duplicate answers the first msgid and uses no quota");
  t.match(await send(s, tok, "o-q", "q-3"), { errcode: 45009, errmsg: /^reach max api daily quota limit rid: / });
  t.match(await quotaGet(s, tok), { quota: { daily_limit: 3, used: 3, remain: 0 } });
  t.match(await quotaGet(s, tok, "/cgi-bin/unknown"), { errcode: 76021 });
  t.match(await quotaGet(s, "bad-token"), { errcode: 40001 });
  // One ms before midnight Beijing time the day is still spent; at midnight it resets.
  clock.now = nextBeijingMidnight(clock.now) - 1;
  t.equal((await send(s, tok, "o-q", "q-4")).errcode, 45009);
  clock.now += 1;
  t.equal(new Date(clock.now).toISOString(), "2026-06-01T16:00:00.000Z", "midnight in Beijing is 16:00 UTC");
  t.equal((await send(s, tok, "o-q", "q-5")).errcode, 0);
  t.match(await new SimulatorControl(s.url).quota(), { daily_limit: 3, used: 1, remain: 2 });
  t.match(s.stats(), { accepted: 4, quotaRejections: 2, quotaCalls: 4 });
  t.match(s.quota({ used: 3 }), { remain: 0 }, "tests can spend the day at once");
});
