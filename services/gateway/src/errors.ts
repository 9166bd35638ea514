import { STATUS_CODES } from "node:http";

/**
 * An error the client caused or can act on. The one error handler turns it into
 * `{ error, message, details? }` with its status code; anything else is a 5xx whose
 * details stay in the log.
 */
export class HttpError extends Error {
  override name = "HttpError";
  readonly error: string;
  constructor(
    readonly statusCode: number,
    message: string,
    readonly details?: unknown,
    opts?: ErrorOptions & { error?: string },
  ) {
    super(message, opts);
    this.error = opts?.error ?? errorCode(statusCode);
  }
}

/** `412` → `precondition_failed`: a stable, machine-readable reason next to the message. */
export function errorCode(statusCode: number): string {
  return (STATUS_CODES[statusCode] ?? "error")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_|_$/g, "");
}

export const badRequest = (message: string, details?: unknown) => new HttpError(400, message, details);
export const notFound = (message: string) => new HttpError(404, message);
export const conflict = (message: string, details?: unknown) => new HttpError(409, message, details);
export const preconditionFailed = (message: string, details?: unknown) => new HttpError(412, message, details);
export const unprocessable = (message: string, details?: unknown) => new HttpError(422, message, details);
