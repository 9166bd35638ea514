import { STATUS_CODES } from "node:http";
import { HttpError, httpErrors } from "@fastify/sensible";

export { HttpError };

/**
 * An error the client caused or can act on, built by @fastify/sensible (http-errors): the
 * one error handler turns it into `{ error, message, details? }` with its status code;
 * anything else is a 5xx whose details stay in the log.
 */
export function httpError(statusCode: number, message: string, details?: unknown, opts?: ErrorOptions & { error?: string }): HttpError {
  const err = httpErrors.createError(statusCode, message, {
    error: opts?.error ?? errorCode(statusCode),
    ...(details !== undefined ? { details } : {}),
  });
  if (opts?.cause !== undefined) err.cause = opts.cause;
  return err;
}

/** `412` → `precondition_failed`: a stable, machine-readable reason next to the message. */
export function errorCode(statusCode: number): string {
  return (STATUS_CODES[statusCode] ?? "error")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_|_$/g, "");
}

export const badRequest = (message: string, details?: unknown) => httpError(400, message, details);
export const notFound = (message: string) => httpError(404, message);
export const conflict = (message: string, details?: unknown) => httpError(409, message, details);
export const preconditionFailed = (message: string, details?: unknown) => httpError(412, message, details);
export const unprocessable = (message: string, details?: unknown) => httpError(422, message, details);
