import type { IncomingMessage, ServerResponse } from "node:http";
import { SmsFaultSpecError, parseSmsFaultSpec } from "./faults.js";
import { parseJson, readBody, sendJson } from "@notify/sim-http";
import { pushReports, reportFor } from "./reports.js";
import type { SmsSimState } from "./state.js";

export const CONTROL_PREFIX = "/_sim/";

/**
 * Control routes (tests and `npm start` drive a simulator in another process):
 * - `GET /_sim/health`, `GET /_sim/stats`
 * - `GET /_sim/messages[?phone=&session=]` → `{ count, messages }`
 * - `GET /_sim/faults`, `POST /_sim/faults` (a spec or an array) → 201, `DELETE /_sim/faults[?phone=]`
 * - `PUT /_sim/report-url` `{ url }` (null: stop pushing) → `{ url }`
 * - `POST /_sim/reports` `{ sid, fail?: { errmsg }, times? }` → pushes that message's report now (`times` copies: duplicate pushes)
 * - `GET /_sim/pushes` → `{ pushes }` (what the callback answered)
 * - `POST /_sim/reset`
 */
export async function control(s: SmsSimState, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  switch (`${req.method} ${path.slice(CONTROL_PREFIX.length)}`) {
    case "GET health":
      return sendJson(res, 200, { ok: true });
    case "GET stats":
      return sendJson(res, 200, s.stats);
    case "GET messages": {
      const phone = query.get("phone");
      const session = query.get("session");
      const messages = s.messages.filter((m) => (!phone || m.phone === phone) && (!session || m.sessionContext === session));
      return sendJson(res, 200, { count: messages.length, messages });
    }
    case "GET faults":
      return sendJson(res, 200, { faults: s.faults.list() });
    case "POST faults": {
      const body = parseJson(await readBody(req));
      try {
        const specs = (Array.isArray(body) ? body : [body]).map(parseSmsFaultSpec);
        return sendJson(res, 201, { faults: specs.map((f) => s.faults.add(f)) });
      } catch (err) {
        if (err instanceof SmsFaultSpecError) return sendJson(res, 400, { error: err.message });
        throw err;
      }
    }
    case "DELETE faults": {
      const phone = query.get("phone");
      return sendJson(res, 200, { cleared: s.faults.clear(phone ? { phone } : {}) });
    }
    case "PUT report-url": {
      const body = parseJson(await readBody(req)) as { url?: unknown } | undefined;
      const url = body?.url;
      if (url !== null && (typeof url !== "string" || !/^https?:\/\//.test(url))) return sendJson(res, 400, { error: "url must be an http(s) URL or null" });
      s.reportUrl = url ?? undefined;
      return sendJson(res, 200, { url: s.reportUrl ?? null });
    }
    case "POST reports": {
      const body = parseJson(await readBody(req)) as { sid?: unknown; fail?: { errmsg?: unknown }; times?: unknown } | undefined;
      const m = s.messages.find((x) => x.serialNo === body?.sid);
      if (!m) return sendJson(res, 404, { error: "no message with that sid" });
      const times = Number.isInteger(body?.times) ? Math.min(10, Math.max(1, body!.times as number)) : 1;
      const fail = body?.fail ? { ...(typeof body.fail.errmsg === "string" ? { errmsg: body.fail.errmsg } : {}) } : undefined;
      const pushes = [];
      for (let i = 0; i < times; i++) pushes.push(await pushReports(s, [reportFor(m, fail)]));
      return sendJson(res, 200, { pushes });
    }
    case "GET pushes":
      return sendJson(res, 200, { pushes: s.pushes });
    case "POST reset":
      s.reset();
      return sendJson(res, 200, { ok: true });
    default:
      return sendJson(res, 404, { error: `no control route ${req.method} ${path}` });
  }
}
