/** A template that cannot be stored or used: its payload_schema or an expression does not compile. */
export class TemplateError extends Error {
  override name = "TemplateError";
  /** Where exactly, when known: `{ path, keyword }` in a schema, `{ line, column }` in an expression. */
  readonly details: Record<string, unknown> | undefined;
  constructor(
    message: string,
    /** Which part is wrong: `payload_schema`, `data.<field>`, `url`, `miniprogram.pagepath`. */
    readonly field: string,
    opts?: ErrorOptions & { details?: Record<string, unknown> },
  ) {
    super(message, opts);
    this.details = opts?.details;
  }
}
