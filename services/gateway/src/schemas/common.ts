import { Type, type TSchema } from "typebox";

/** Every 4xx (and the generic 5xx) body: a stable reason, a message, and details where they help. */
export const ErrorSchema = (description: string) =>
  Type.Object(
    {
      error: Type.String({ description: "Machine-readable reason, e.g. not_found, precondition_failed" }),
      message: Type.String({ description: "What went wrong, for a human" }),
      details: Type.Optional(Type.Unknown({ description: "Validation errors or the part that is wrong" })),
    },
    { description },
  );

export const Errors = {
  400: ErrorSchema("Invalid request: the message and details say what is wrong"),
  401: ErrorSchema("Missing or unknown bearer key"),
  404: ErrorSchema("Not found"),
  409: ErrorSchema("Conflicts with the current state"),
  412: ErrorSchema("If-Match / If-None-Match precondition failed: reload and retry"),
  413: ErrorSchema("Body too large"),
  422: ErrorSchema("The data does not satisfy the template's payload_schema"),
  429: ErrorSchema("Rate limit exceeded"),
  500: ErrorSchema("Internal error (details are in the gateway's log)"),
  503: ErrorSchema("NATS is unavailable"),
} as const;

/** Picks the documented error responses of one route. */
export function errors<C extends keyof typeof Errors>(...codes: C[]): { [K in C]: (typeof Errors)[K] } {
  const out = {} as { [K in C]: (typeof Errors)[K] };
  for (const c of codes) out[c] = Errors[c];
  return out;
}

const IfMatch = Type.String({ description: 'The ETag of the version you edited, e.g. "12" (412 if it moved on); * = must exist' });

/** Optimistic concurrency on a KV revision. */
export const ConditionalHeaders = Type.Object({
  "if-match": Type.Optional(IfMatch),
  "if-none-match": Type.Optional(Type.String({ description: "* = create only (412 if it exists)" })),
});

export const IfMatchHeaders = Type.Object({ "if-match": Type.Optional(IfMatch) });

export const Locale = (description: string) =>
  Type.String({ pattern: "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", maxLength: 35, description });

export const NoContent = Type.Null({ description: "Done" });

/** A JSON object whose fields are not described further. */
export const AnyObject = (description: string): TSchema => Type.Object({}, { additionalProperties: true, description });
