import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import {
  FailReason,
  HeaderNames,
  SkipReason,
  Status,
  childTrace,
  encodeJson,
  languageCandidates,
  lockKey,
  isSmsPayload,
  maskPhone,
  sendIdFor,
  type EventEnvelope,
  type JobPayload,
  type SendJob,
  type SendRecord,
} from "@notify/contracts";
import {
  DISPATCHER_MAX_DELIVER,
  Decisions,
  JOB_HEADER_ROOM,
  RecordStore,
  isTooLarge,
  jobBodyLimit,
  publishJob,
  type Decision,
  type JsPublisher,
  type KvWriter,
  type StoredRecord,
} from "@notify/nats";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import { DEFAULT_FIELD_POLICY, enforceFieldRules, type CompiledTemplate, type TemplateCache } from "@notify/templates";
import { abandonKey, claimKey } from "./claim.js";
import { prepareFallback, renderSms, smsIsFallbackOnly } from "./sms.js";
import { parseEnvelope, rejectedRecordId } from "./envelope.js";

export interface DispatcherDeps {
  js: JetStreamClient;
  /** Publishes jobs (default `js`; a JsPipeline on the hot path). */
  publisher?: JsPublisher;
  records: RecordStore;
  locks: KV;
  /** Claims locks through a JsPipeline (default `locks.create` + `locks.get`). */
  lockWriter?: KvWriter;
  templates: TemplateCache;
  metrics: Metrics;
  log: Logger;
  channels: readonly string[];
  /** The connection's max_payload now (it may change with the server after a reconnect). */
  maxPayload: () => number;
  /** Test-only: called after a fresh claim, before the job is published. */
  afterClaim?: (sendId: string) => Promise<void> | void;
}

/** What happened to one channel of one event (also the metric label). */
export type Outcome = "queued" | "republished" | "duplicate" | "skipped" | "failed" | "rejected" | "in_flight" | "fallback_only";

/**
 * The dispatcher's handler: one event in, one decision out. Business outcomes are
 * recorded and acked; only infrastructure errors throw (and the event is redelivered).
 */
export function createDispatchHandler(deps: DispatcherDeps): (msg: JsMsg) => Promise<Decision> {
  const { metrics, log } = deps;

  return async (msg) => {
    const parsed = parseEnvelope(msg.data, msg.subject);
    if (!parsed.ok) {
      await recordRejected(deps, msg, parsed.reason, parsed.message, parsed.errors);
      metrics.rejectedTotal.inc({ reason: parsed.reason });
      metrics.eventsTotal.inc({ event: "unknown", outcome: "rejected" });
      return Decisions.ack();
    }
    const env = parsed.envelope;
    const trace = childTrace(msg.headers?.get(HeaderNames.traceparent));
    // On the last delivery an error can no longer be retried: it is recorded instead.
    const lastDelivery = msg.info.deliveryCount >= DISPATCHER_MAX_DELIVER;
    const outcomes = await Promise.all(deps.channels.map((channel) => dispatchChannel(deps, env, channel, trace.traceparent, trace.traceId, lastDelivery)));
    for (const o of outcomes) metrics.eventsTotal.inc({ event: env.event, outcome: o });
    return Decisions.ack();
  };

  async function recordRejected(d: DispatcherDeps, msg: JsMsg, reason: string, message: string, errors?: unknown[]) {
    const msgId = msg.headers?.get(HeaderNames.msgId) || undefined;
    const id = rejectedRecordId(msgId, msg.seq);
    const now = new Date().toISOString();
    const rec: SendRecord = {
      send_id: id,
      event_id: msgId ?? `seq:${msg.seq}`,
      event: msg.subject.replace(/^events\./, ""),
      order_id: null,
      ticket_id: null,
      channel: "",
      language: null,
      template_id: null,
      openid: null,
      status: Status.rejected,
      attempts: 0,
      reason,
      last_error: message,
      errors: errors?.slice(0, 20),
      occurred_at: null,
      updated_at: now,
    };
    await d.records.create(rec);
    log.warn({ send_id: id, event_id: rec.event_id, subject: msg.subject, reason, error: message }, "event rejected");
  }
}

function baseRecord(env: EventEnvelope, channel: string, sendId: string, template: CompiledTemplate | undefined, language: string | null): SendRecord {
  return {
    send_id: sendId,
    event_id: env.id,
    event: env.event,
    order_id: env.order_id,
    ticket_id: env.ticket_id ?? null,
    channel,
    language,
    template_id: template?.template.template_id ?? null,
    openid: env.recipient.openid,
    status: Status.queued,
    attempts: 0,
    occurred_at: env.occurred_at,
    updated_at: new Date().toISOString(),
    ...(channel === "sms" && env.recipient.phone ? { phone: maskPhone(env.recipient.phone) } : {}),
  };
}

/**
 * A final outcome that is not a send (skipped, failed schema/render). The first outcome
 * of a business key stands; a later event for a never-delivered key can still be sent
 * (the queued path replays it), so nothing is lost by not overwriting here.
 */
async function recordOutcome(deps: DispatcherDeps, rec: SendRecord): Promise<void> {
  const r = await deps.records.create(rec);
  if (!r.written && r.current && r.current.record.event_id !== rec.event_id) {
    deps.log.info({ send_id: rec.send_id, event_id: rec.event_id, status: rec.status, recorded: r.current.record.status }, "business key already recorded: outcome logged only");
  }
}

async function dispatchChannel(deps: DispatcherDeps, env: EventEnvelope, channel: string, traceparent: string, traceId: string, lastDelivery: boolean): Promise<Outcome> {
  const { templates, metrics } = deps;
  const key = { event: env.event, order_id: env.order_id, ticket_id: env.ticket_id ?? null, channel };
  const sendId = sendIdFor(key);
  // Built only when something is logged: the happy path logs nothing.
  let child: Logger | undefined;
  const log = () => (child ??= deps.log.child({ send_id: sendId, event_id: env.id, trace_id: traceId }));
  // The event's WeChat template names the SMS one as its fallback: nothing to do on `sms` here.
  if (channel === "sms" && smsIsFallbackOnly(templates, env, deps.channels)) return "fallback_only";
  const broken = templates.invalidFor(env.event, channel, env.recipient.locale);
  if (broken) {
    const message = `stored template ${broken.key}@${broken.revision} does not compile: ${broken.error}`;
    await recordOutcome(deps, { ...baseRecord(env, channel, sendId, undefined, broken.language), status: Status.failed, reason: FailReason.templateInvalid, last_error: message });
    log().warn({ reason: FailReason.templateInvalid, key: broken.key, revision: broken.revision }, "stored template does not compile: recorded failed");
    return "failed";
  }
  const template = templates.resolve(env.event, channel, env.recipient.locale);
  const language = template?.template.language ?? languageCandidates(env.recipient.locale).at(-1)!;

  if (!template || !template.template.enabled) {
    const reason = template ? SkipReason.disabled : SkipReason.noTemplate;
    await recordOutcome(deps, { ...baseRecord(env, channel, sendId, template, template ? language : null), status: Status.skipped, reason });
    metrics.skippedTotal.inc({ reason });
    log().info({ reason, event: env.event, channel }, "skipped");
    return "skipped";
  }

  const v = template.validate(env.data);
  if (!v.ok) {
    const message = v.missing.length ? `missing fields: ${v.missing.join(", ")}` : v.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    await recordOutcome(deps, {
      ...baseRecord(env, channel, sendId, template, language),
      status: Status.failed,
      reason: FailReason.schema,
      last_error: message,
      errors: v.errors.slice(0, 20),
    });
    log().warn({ reason: FailReason.schema, error: message }, "payload does not match the template schema");
    return "failed";
  }

  if (template.sms && !env.recipient.phone) {
    await recordOutcome(deps, { ...baseRecord(env, channel, sendId, template, language), status: Status.skipped, reason: SkipReason.noPhone });
    metrics.skippedTotal.inc({ reason: SkipReason.noPhone });
    log().info({ reason: SkipReason.noPhone }, "skipped: SMS template and no recipient.phone");
    return "skipped";
  }

  let job: SendJob<JobPayload>;
  try {
    job = {
      send_id: sendId,
      event_id: env.id,
      event: env.event,
      channel,
      order_id: env.order_id,
      ticket_id: env.ticket_id ?? null,
      openid: env.recipient.openid,
      language,
      template_id: template.template.template_id,
      occurred_at: env.occurred_at,
      payload: template.sms
        ? renderSms(template, env, env.recipient.phone!)
        : template.render({ openid: env.recipient.openid, send_id: sendId, data: env.data, event: env.event, order_id: env.order_id, ticket_id: env.ticket_id ?? null, occurred_at: env.occurred_at }),
    };
  } catch (err) {
    await recordOutcome(deps, { ...baseRecord(env, channel, sendId, template, language), status: Status.failed, reason: FailReason.render, last_error: String((err as Error).message) });
    log().warn({ err }, "render failed");
    return "failed";
  }

  // WeChat's keyword rules (47003 otherwise, never retryable): truncate or reject per template.
  const checked = isSmsPayload(job.payload) ? ({ ok: true, payload: job.payload, rejected: [] } as const) : enforceFieldRules(job.payload, template.template.field_policy ?? DEFAULT_FIELD_POLICY);
  if (!checked.ok) {
    const message = checked.rejected.map((f) => f.message).join("; ");
    await recordOutcome(deps, { ...baseRecord(env, channel, sendId, template, language), status: Status.failed, reason: FailReason.fieldRule, last_error: message, errors: checked.rejected });
    log().warn({ reason: FailReason.fieldRule, fields: checked.rejected.map((f) => `${f.field}:${f.rule}:${f.problem}`) }, "a value breaks its WeChat keyword rule");
    return "failed";
  }
  job.payload = checked.payload;
  if (template.template.fallback === "sms" && deps.channels.includes("sms")) {
    const fb = prepareFallback(templates, env, sendId);
    if ("job" in fb) job.fallback = fb.job;
    else log().info({ fallback: fb.none }, "WeChat template names an SMS fallback; none prepared");
  }

  // The job's size is known before the key is claimed: a job the bus cannot carry never
  // holds the key (a later, smaller event for it is sent).
  const body = encodeJson(job);
  const limit = jobBodyLimit(deps.maxPayload());
  if (body.length > limit) {
    const message = `job is ${body.length} bytes; the bus takes at most ${limit} (max_payload ${deps.maxPayload()} minus ${JOB_HEADER_ROOM} for headers)`;
    await abandonKey(deps, lockKey(key), { failed: failedRecord(env, channel, sendId, template, language, FailReason.tooLarge, message) });
    log().warn({ reason: FailReason.tooLarge, bytes: body.length, limit }, "job too large for the bus: recorded failed");
    return "failed";
  }

  // From claim to publish, every exit either publishes the job or gives the key up
  // (records `failed`, releases the claim); only a retryable error leaves it claimed, and
  // the redelivery of this event (same event id) resumes it.
  const lk = lockKey(key);
  let lockRevision: number | undefined;
  let stored: StoredRecord | undefined;
  try {
    // 1. Claim the business key (create-only; a stale claim is taken over).
    const claim = await claimKey(deps, lk, { send_id: sendId, event_id: env.id, at: new Date().toISOString() });
    if (claim.kind === "duplicate") {
      metrics.duplicatesTotal.inc();
      log().info({ holder_event_id: claim.holderEventId, lock: lk }, "duplicate event: not re-sent");
      return "duplicate";
    }
    lockRevision = claim.revision;
    if (claim.takenOver) log().warn({ stale_event_id: claim.takenOver, lock: lk }, "stale claim taken over: its holder never published a job");
    const fresh = claim.fresh;
    if (fresh) await deps.afterClaim?.(sendId);

    // 2. Record `queued` before publishing, so a fast sender's `success` is never overwritten.
    const queued = baseRecord(env, channel, sendId, template, language);
    const created = await deps.records.create(queued);
    if (created.written) {
      stored = { record: created.record, revision: created.revision };
    } else {
      const cur = created.current;
      if (!cur) throw new Error(`record ${sendId} exists but could not be read`);
      if (cur.record.status === Status.queued && cur.record.event_id === env.id) {
        // Our own earlier attempt: re-publish with the same Nats-Msg-Id (SENDS de-duplicates).
        stored = cur;
      } else if (cur.record.status === Status.queued || cur.record.status === Status.retrying || cur.record.status === Status.success) {
        // In flight or delivered (e.g. the lock expired): never a second send.
        metrics.duplicatesTotal.inc();
        log().info({ status: cur.record.status, holder_event_id: cur.record.event_id }, "business key already in flight or sent: not re-sent");
        return cur.record.event_id === env.id ? "in_flight" : "duplicate";
      } else {
        // Never delivered before (skipped, failed, dead): this event gets its chance.
        const w = await deps.records.write(sendId, () => queued, { expected: cur, replay: true });
        if (!w.written) {
          log().info({ status: w.current?.record.status }, "record moved on: not re-sent");
          return "duplicate";
        }
        stored = { record: w.record, revision: w.revision };
      }
    }

    // 3. Publish the job; the SENDS duplicate window makes a re-publish safe.
    const ack = await publishJob(deps.publisher ?? deps.js, job, { recordRevision: stored.revision, traceparent, body });
    if (!fresh || ack.duplicate) {
      log().info({ duplicate: ack.duplicate }, "job re-published after a redelivery");
      return "republished";
    }
    return "queued";
  } catch (err) {
    // A size refused by the server (a stream's max_msg_size, a smaller max_payload after a
    // reconnect) fails every retry; on the event's last delivery any error is final.
    const reason = isTooLarge(err) ? FailReason.tooLarge : lastDelivery ? FailReason.dispatch : null;
    if (!reason) throw err;
    const message = reason === FailReason.tooLarge ? `job of ${body.length} bytes refused by the bus: ${(err as Error).message}` : `not published after ${DISPATCHER_MAX_DELIVER} deliveries: ${(err as Error).message}`;
    await abandonKey(deps, lk, { failed: failedRecord(env, channel, sendId, template, language, reason, message), stored, lockRevision });
    log().error({ err, reason }, "job not published: recorded failed, claim released");
    return "failed";
  }
}

function failedRecord(env: EventEnvelope, channel: string, sendId: string, template: CompiledTemplate, language: string, reason: string, message: string): SendRecord {
  return { ...baseRecord(env, channel, sendId, template, language), status: Status.failed, reason, last_error: message };
}
