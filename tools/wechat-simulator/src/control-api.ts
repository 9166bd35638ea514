import type { IncomingMessage, ServerResponse } from "node:http";
import { FaultSpecError, parseFaultSpec, type FaultSpec } from "./faults.js";
import { parseJson, readBody, sendJson } from "./http-util.js";
import type { SimMessage } from "./messages.js";
import type { SimState } from "./state.js";

/** The path prefix of the control API. */
export const CONTROL_PREFIX = "/_sim/";

/**
 * Control routes, so tests, benchmarks and `npm start` can drive a simulator running
 * in another process:
 * - `GET /_sim/health` → `{ ok: true }`
 * - `GET /_sim/messages?since=<epoch ms>&after=<seq>&touser=&client_msg_id=&limit=` → `{ count, last_seq, messages }`
 * - `GET /_sim/stats` → SimStats
 * - `GET /_sim/faults` → `{ faults }`
 * - `POST /_sim/faults` with a FaultSpec or an array of them → 201 `{ faults }`
 * - `DELETE /_sim/faults[?openid=]` → `{ cleared }`
 * - `POST /_sim/expire-tokens` → `{ expired }`
 * - `POST /_sim/reset` → `{ ok: true }`
 * - `GET /_sim/quota` → the template/send quota today; `POST /_sim/quota` `{ daily_limit?, used? }` sets it
 * - `POST /_sim/ip-whitelist` `{ ips: string[] | null }` → `{ ips }`
 */
export async function control(sim: SimState, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  const route = `${req.method} ${path.slice(CONTROL_PREFIX.length)}`;
  switch (route) {
    case "GET health":
      return sendJson(res, 200, { ok: true });
    case "GET messages":
      return listMessages(sim, res, query);
    case "GET stats":
      return sendJson(res, 200, sim.stats());
    case "GET faults":
      return sendJson(res, 200, { faults: sim.faults.list() });
    case "POST faults": {
      const body = parseJson(await readBody(req));
      const specs: unknown[] = Array.isArray(body) ? body : [body];
      let parsed: FaultSpec[];
      try {
        parsed = specs.map(parseFaultSpec);
      } catch (err) {
        if (err instanceof FaultSpecError) return sendJson(res, 400, { error: err.message });
        throw err;
      }
      return sendJson(res, 201, { faults: parsed.map((s) => sim.faults.add(s)) });
    }
    case "DELETE faults": {
      const openid = query.get("openid");
      return sendJson(res, 200, { cleared: sim.faults.clear(openid ? { openid } : {}) });
    }
    case "POST expire-tokens":
      return sendJson(res, 200, { expired: sim.tokens.expireAll(sim.now()) });
    case "GET quota":
      return sendJson(res, 200, sim.quota.view(sim.now()));
    case "POST quota": {
      const b = parseJson(await readBody(req)) as { daily_limit?: unknown; used?: unknown } | undefined;
      const ok = (v: unknown) => v === undefined || (Number.isInteger(v) && (v as number) >= 0);
      if (!b || typeof b !== "object" || !ok(b.daily_limit) || !ok(b.used)) return sendJson(res, 400, { error: "daily_limit and used must be non-negative integers" });
      return sendJson(res, 200, sim.quota.set(sim.now(), { ...(b.daily_limit !== undefined ? { dailyLimit: b.daily_limit as number } : {}), ...(b.used !== undefined ? { used: b.used as number } : {}) }));
    }
    case "POST ip-whitelist": {
      const b = parseJson(await readBody(req)) as { ips?: unknown } | undefined;
      const ips = b?.ips;
      if (ips !== null && !(Array.isArray(ips) && ips.every((v) => typeof v === "string"))) return sendJson(res, 400, { error: "ips must be an array of strings or null" });
      sim.whitelist.set(ips);
      return sendJson(res, 200, { ips: sim.whitelist.list() });
    }
    case "POST reset":
      sim.reset();
      return sendJson(res, 200, { ok: true });
    default:
      return sendJson(res, 404, { error: `no control route ${route}` });
  }
}

function listMessages(sim: SimState, res: ServerResponse, q: URLSearchParams): void {
  const since = num(q.get("since"));
  const after = num(q.get("after"));
  const touser = q.get("touser");
  const cmid = q.get("client_msg_id");
  const limit = num(q.get("limit"));
  if ([since, after, limit].some((v) => Number.isNaN(v))) return sendJson(res, 400, { error: "since, after and limit must be numbers" });
  let list: readonly SimMessage[] =
    cmid ? sim.log.deliveriesFor(cmid)
    : touser ? sim.log.messagesTo(touser)
    : after !== null ? sim.log.afterSeq(after)
    : since !== null ? sim.log.since(since)
    : sim.log.messages;
  // The indexes answer the narrow questions; the other filters still apply on top.
  if (since !== null || after !== null || (cmid && touser)) {
    list = list.filter((m) => (since === null || m.accepted_at >= since) && (after === null || m.seq > after) && (!touser || m.touser === touser));
  }
  if (limit !== null && list.length > limit) list = list.slice(0, limit);
  const last = list.length ? list[list.length - 1]!.seq : (after ?? 0);
  sendJson(res, 200, { count: list.length, last_seq: last, messages: list });
}

function num(v: string | null): number | null {
  return v === null || v === "" ? null : Number(v);
}
