import { createHash } from "node:crypto";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { EventEnvelopeSchema, MAX_ENVELOPE_BYTES, type EventEnvelope } from "@notify/contracts";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const validate = addFormats(new Ajv({ allErrors: true, strict: false })).compile<EventEnvelope>(EventEnvelopeSchema);
const dec = new TextDecoder("utf-8", { fatal: true });

export type EnvelopeResult =
  | { ok: true; envelope: EventEnvelope }
  | { ok: false; reason: "too_large" | "not_json" | "invalid" | "subject_mismatch"; message: string; errors?: unknown[] };

/** Parses and validates an event; every failure says why (it becomes a `rejected` record). */
export function parseEnvelope(data: Uint8Array, subject: string): EnvelopeResult {
  if (data.length > MAX_ENVELOPE_BYTES) return { ok: false, reason: "too_large", message: `envelope is ${data.length} bytes, the limit is ${MAX_ENVELOPE_BYTES}` };
  let body: unknown;
  try {
    body = JSON.parse(dec.decode(data));
  } catch (err) {
    return { ok: false, reason: "not_json", message: `not JSON: ${(err as Error).message}` };
  }
  if (!validate(body)) {
    const errors = validate.errors ?? [];
    const message = errors.slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    return { ok: false, reason: "invalid", message, errors };
  }
  // The subject is the routing truth for publishers' ACLs: an event must travel on its own subject.
  if (subject !== `events.${body.event}`) {
    return { ok: false, reason: "subject_mismatch", message: `event ${body.event} published on ${subject}` };
  }
  return { ok: true, envelope: body };
}

/** Record key for an event that has no valid business key: derived from its message id or stream sequence. */
export function rejectedRecordId(msgId: string | undefined, streamSeq: number): string {
  return `rej_${createHash("sha256").update(msgId ? `id:${msgId}` : `seq:${streamSeq}`).digest("hex").slice(0, 32)}`;
}
