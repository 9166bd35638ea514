/** A template that cannot be stored or used: its payload_schema or an expression does not compile. */
export class TemplateError extends Error {
  override name = "TemplateError";
  constructor(
    message: string,
    /** Which part is wrong: `payload_schema`, `data.<field>`, `url`, `miniprogram.pagepath`. */
    readonly field: string,
    opts?: ErrorOptions,
  ) {
    super(message, opts);
  }
}
