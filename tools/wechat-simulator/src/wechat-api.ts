import type { IncomingMessage, ServerResponse } from "node:http";
import { OBSOLETE_KEYS, checkField } from "@notify/templates/field-rules";
import { Errcode, errorBody, type ErrorBody } from "./errcodes.js";
import { FaultKind, FaultTarget, type Fault } from "./faults.js";
import { parseJson, readBody, sendJson, sendText } from "./http-util.js";
import type { SimMessage } from "./messages.js";
import type { SimState } from "./state.js";

/** GET /cgi-bin/token?grant_type=client_credential&appid=&secret= : a new token on every call. */
export function getToken(sim: SimState, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
  sim.counters.tokenCalls++;
  answerToken(sim, req, res, query.get("grant_type"), query.get("appid"), query.get("secret"), () => {
    sim.counters.tokensIssued++;
    return sim.tokens.issuePlain(sim.now());
  });
}

/** POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}. */
export async function stableToken(sim: SimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  sim.counters.stableTokenCalls++;
  const body = parseJson(await readBody(req));
  if (!body || typeof body !== "object") return sendJson(res, 200, errorBody(Errcode.dataFormat));
  const b = body as Record<string, unknown>;
  const force = b.force_refresh === true || b.force_refresh === "true";
  answerToken(sim, req, res, str(b.grant_type), str(b.appid), str(b.secret), () => {
    const now = sim.now();
    if (force) {
      const limited = sim.forceRefresh.take(now);
      if (limited !== Errcode.ok) {
        sim.counters.forceRefreshesRefused++;
        return errorBody(limited);
      }
      sim.counters.forceRefreshes++;
    }
    const t = sim.tokens.issueStable(now, force);
    if (t.minted) sim.counters.tokensIssued++;
    return { access_token: t.access_token, expires_in: t.expires_in };
  });
}

function answerToken(
  sim: SimState,
  req: IncomingMessage,
  res: ServerResponse,
  grantType: string | null,
  appid: string | null,
  secret: string | null,
  issue: () => { access_token: string; expires_in: number } | ErrorBody,
): void {
  const { cfg } = sim;
  const ipRefusal = sim.whitelist.refuse(req.socket.remoteAddress);
  if (ipRefusal !== null) {
    sim.counters.ipRejections++;
    return sim.after(cfg.latencyMs, () => sendJson(res, 200, errorBody(Errcode.ipNotWhitelisted, ipRefusal)));
  }
  const refused =
    grantType !== "client_credential" ? Errcode.invalidGrantType
    : !appid ? Errcode.appidMissing
    : appid !== cfg.appId ? Errcode.invalidAppid
    : !secret ? Errcode.appSecretMissing
    : secret !== cfg.appSecret ? Errcode.invalidAppSecret
    : Errcode.ok;
  const pick = sim.faults.pick(FaultTarget.token);
  sim.after(cfg.latencyMs + pick.latencyMs, () => {
    if (refused !== Errcode.ok) return sendJson(res, 200, errorBody(refused));
    if (pick.failure) return fail(sim, res, pick.failure, false);
    sendJson(res, 200, issue());
  });
}

/** POST /cgi-bin/message/template/send?access_token=… */
export async function templateSend(sim: SimState, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const c = sim.counters;
  c.sendCalls++;
  const text = await readBody(req);
  const { cfg } = sim;
  const tokenErr = sim.tokens.check(query.get("access_token"), sim.now());
  if (tokenErr !== Errcode.ok) {
    c.tokenRejections++;
    c.failed++;
    return sim.after(cfg.latencyMs, () => sendJson(res, 200, errorBody(tokenErr)));
  }
  const parsed = parseMessage(text);
  if (typeof parsed === "number") {
    c.failed++;
    return sim.after(cfg.latencyMs, () => sendJson(res, 200, errorBody(parsed)));
  }
  const invalid = invalidKeyword(parsed.data);
  if (invalid) {
    c.failed++;
    c.fieldRuleRejections++;
    return sim.after(cfg.latencyMs, () => sendJson(res, 200, errorBody(Errcode.argumentInvalid, `argument invalid! data.${invalid}.value invalid`)));
  }
  const pick = sim.faults.pick(FaultTarget.send, parsed.touser);
  sim.after(cfg.latencyMs + pick.latencyMs, () => {
    const f = pick.failure;
    if (f && !f.afterAccept) return fail(sim, res, f, true);
    const now = sim.now();
    let msgid = sim.log.duplicateOf(parsed.touser, parsed.client_msg_id, now);
    if (msgid !== null) {
      // WeChat answers a repeated client_msg_id with the first msgid and sends nothing.
      c.duplicates++;
    } else if (!sim.quota.take(now)) {
      c.failed++;
      c.quotaRejections++;
      return sendJson(res, 200, errorBody(Errcode.dailyQuota));
    } else {
      msgid = sim.log.record(parsed, now).msgid;
      c.accepted++;
      sim.receipts.accepted(msgid, parsed.touser);
    }
    // afterAccept: delivered, but the answer is lost on the way back.
    if (f) return fail(sim, res, f, false);
    sendJson(res, 200, { errcode: 0, errmsg: "ok", msgid });
  });
}

/** The API whose quota `quota/get` reports (the only one the simulator meters). */
export const TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send";

/**
 * POST /cgi-bin/openapi/quota/get?access_token=… {cgi_path}: the day's limit and use of
 * one API, in WeChat's shape (`quota` plus the per-minute `rate_limit`).
 */
export async function quotaGet(sim: SimState, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  sim.counters.quotaCalls++;
  const text = await readBody(req);
  const now = sim.now();
  const tokenErr = sim.tokens.check(query.get("access_token"), now);
  if (tokenErr !== Errcode.ok) return sim.after(sim.cfg.latencyMs, () => sendJson(res, 200, errorBody(tokenErr)));
  const body = parseJson(text) as { cgi_path?: unknown } | undefined;
  if (!body || typeof body !== "object" || typeof body.cgi_path !== "string") return sendJson(res, 200, errorBody(Errcode.dataFormat));
  if (body.cgi_path !== TEMPLATE_SEND_PATH) return sendJson(res, 200, errorBody(Errcode.cgiPathNotFound));
  const quota = sim.quota.view(now);
  sim.after(sim.cfg.latencyMs, () => sendJson(res, 200, { errcode: 0, errmsg: "ok", quota, rate_limit: { call_count: 0, refresh_second: 60 } }));
}

type Parsed = Omit<SimMessage, "seq" | "msgid" | "accepted_at">;

/** The message, or the errcode WeChat answers for a malformed one. */
function parseMessage(text: string): Parsed | number {
  if (!text) return Errcode.emptyPostData;
  const body = parseJson(text);
  if (!body || typeof body !== "object" || Array.isArray(body)) return Errcode.dataFormat;
  const b = body as Record<string, unknown>;
  if (typeof b.touser !== "string" || !b.touser) return Errcode.invalidOpenid;
  if (typeof b.template_id !== "string" || !b.template_id) return Errcode.invalidTemplateId;
  if (b.template_id.length > 128) return Errcode.invalidTemplateIdSize;
  if (b.data !== undefined && (!b.data || typeof b.data !== "object" || Array.isArray(b.data))) return Errcode.dataFormat;
  if (b.client_msg_id !== undefined && typeof b.client_msg_id !== "string") return Errcode.argumentInvalid;
  if (b.url !== undefined && typeof b.url !== "string") return Errcode.argumentInvalid;
  const mp = b.miniprogram;
  if (mp !== undefined && (!mp || typeof mp !== "object" || typeof (mp as { appid?: unknown }).appid !== "string")) return Errcode.argumentInvalid;
  return {
    touser: b.touser,
    template_id: b.template_id,
    client_msg_id: (b.client_msg_id as string | undefined) || null,
    data: (b.data ?? {}) as Parsed["data"],
    url: (b.url as string | undefined) ?? null,
    miniprogram: (mp as Parsed["miniprogram"]) ?? null,
  };
}

/**
 * The first keyword whose value WeChat refuses (47003 `data.<key>.value invalid`): not a
 * string, or breaking the rule its prefix selects (the rules the dispatcher applies, from
 * @notify/templates). `first`/`remark` and colours are accepted and not shown, as in WeChat.
 */
function invalidKeyword(data: Parsed["data"]): string | null {
  for (const [key, field] of Object.entries(data)) {
    if (OBSOLETE_KEYS.has(key)) continue;
    const value = (field as { value?: unknown } | null)?.value;
    if (typeof value !== "string" || checkField(key, value) !== null) return key;
  }
  return null;
}

/** Applies a failure fault. `countFailed`: the call delivered nothing. */
function fail(sim: SimState, res: ServerResponse, f: Fault, countFailed: boolean): void {
  const c = sim.counters;
  if (countFailed) c.failed++;
  switch (f.kind) {
    case FaultKind.errcode:
      return sendJson(res, 200, errorBody(f.errcode ?? Errcode.systemBusy, f.errmsg));
    case FaultKind.http: {
      const status = f.status ?? 503;
      return sendText(res, status, `<html><body><h1>${status}</h1>simulated gateway error</body></html>`);
    }
    case FaultKind.drop:
      c.dropped++;
      res.socket?.destroy();
      return;
    case FaultKind.timeout:
      c.timedOut++;
      sim.hang(res);
      return;
    case FaultKind.latency:
      return; // never a failure (FaultBook.pick)
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}
