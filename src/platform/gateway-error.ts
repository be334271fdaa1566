/**
 * An operational failure the user can fix. The message follows *subject: problem (value); remedy*;
 * `code` is stable for logs and tests; `cause` keeps the underlying error.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GatewayError";
  }
}
