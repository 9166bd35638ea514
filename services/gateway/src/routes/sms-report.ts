import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { KV } from "@nats-io/kv";
import { Type } from "typebox";
import { RecordStore } from "@notify/nats";
import { ReceiptNotReadyError, applyDelivery, smsDelivery, type ReceiptOutcome } from "../services/receipts.js";

export interface SmsReportOptions {
  /** The shared secret the callback URL carries as `?token=` (Tencent signs nothing). */
  token: string;
  msgids: KV;
  /** The send records bucket. */
  records: KV;
  /** Wait for a record the report overtook (default 2500 ms). */
  waitForSuccessMs?: number;
}

export const SMS_REPORT_PATH = "/sms/status-report";
/** Tencent batches reports; 1,000 per push is far above what it sends at once. */
const MAX_REPORTS = 1000;
/** Reports applied at once: enough to answer a batch fast, few enough not to flood KV. */
const PARALLEL = 16;

// Fields as Tencent documents them; extra fields are ignored. nationcode and mobile are
// read by nothing here: the sid names the send, and the number never reaches a log.
const Report = Type.Object({
  sid: Type.String({ minLength: 1, maxLength: 128 }),
  report_status: Type.Union([Type.Literal("SUCCESS"), Type.Literal("FAIL")]),
  errmsg: Type.Optional(Type.String({ maxLength: 256 })),
  description: Type.Optional(Type.String({ maxLength: 512 })),
  user_receive_time: Type.Optional(Type.String({ maxLength: 32 })),
  nationcode: Type.Optional(Type.String({ maxLength: 8 })),
  mobile: Type.Optional(Type.String({ maxLength: 32 })),
});
const Body = Type.Array(Report, { maxItems: MAX_REPORTS });
const Query = Type.Object({ token: Type.Optional(Type.String({ maxLength: 256 })) });
const Answer = Type.Object({ result: Type.Integer(), errmsg: Type.String() });

/** Constant-time token check; hashing first makes the lengths equal (timingSafeEqual needs that). */
function tokenMatches(given: string | undefined, want: Buffer): boolean {
  if (typeof given !== "string") return false;
  return timingSafeEqual(createHash("sha256").update(given, "utf8").digest(), want);
}

/**
 * Tencent Cloud SMS status-report callback: a JSON array of reports (`sid` = the
 * SerialNo SendSms returned, `report_status` SUCCESS/FAIL, `errmsg`). Tencent signs
 * nothing, so the URL carries a shared token (`?token=`, compared in constant time; the
 * logger redacts it from URLs). Each report moves its send `success` → `delivered` /
 * `undelivered` by the path WeChat receipts take. Answers Tencent's `{result, errmsg}`;
 * a record the report overtook beyond the wait answers 503 so Tencent pushes again.
 */
const smsReportRoutes: FastifyPluginAsyncTypebox<SmsReportOptions> = async (app, opts) => {
  const want = createHash("sha256").update(opts.token, "utf8").digest();
  const deps = { msgids: opts.msgids, records: new RecordStore(opts.records), js: app.notify.js, log: app.log, waitForSuccessMs: opts.waitForSuccessMs ?? 2500 };
  const count = (reportStatus: string, outcome: string) => app.notify.gatewayMetrics.smsReports.inc({ report_status: reportStatus, outcome });

  // The token is checked before the body is parsed or validated: a stranger learns nothing.
  app.addHook("onRequest", async (request, reply) => {
    if (request.routeOptions.url !== SMS_REPORT_PATH) return;
    if (!tokenMatches((request.query as { token?: string }).token, want)) {
      count("none", "refused");
      return reply.code(401).send({ result: 401, errmsg: "invalid token" });
    }
  });

  app.post(
    SMS_REPORT_PATH,
    {
      schema: {
        tags: ["SMS"],
        summary: "Tencent Cloud SMS status reports (JSON array; the URL carries ?token=)",
        querystring: Query,
        body: Body,
        response: { 200: Answer, 503: Answer },
      },
    },
    async (request, reply) => {
      const reports = request.body;
      let notReady = 0;
      for (let i = 0; i < reports.length; i += PARALLEL) {
        await Promise.all(
          reports.slice(i, i + PARALLEL).map(async (r) => {
            let outcome: ReceiptOutcome | "not_ready";
            try {
              outcome = await applyDelivery(deps, smsDelivery(r));
            } catch (err) {
              if (!(err instanceof ReceiptNotReadyError)) throw err;
              outcome = "not_ready";
              notReady++;
            }
            count(r.report_status, outcome);
          }),
        );
      }
      // Tencent pushes again on a non-zero result; what was applied is de-duplicated then.
      if (notReady > 0) return reply.code(503).send({ result: 1, errmsg: `${notReady} report(s) not ready: push again` });
      return { result: 0, errmsg: "OK" };
    },
  );
};

export default smsReportRoutes;
