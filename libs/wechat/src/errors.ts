/** The access token could not be obtained (token endpoint refused or failed, KV unreachable). */
export class TokenUnavailableError extends Error {
  override name = "TokenUnavailableError";
  constructor(
    message: string,
    /** WeChat's errcode when the token endpoint answered one. */
    readonly errcode: number | null = null,
    opts?: ErrorOptions,
  ) {
    super(message, opts);
  }
}
