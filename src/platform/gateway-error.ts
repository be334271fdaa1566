/**
 * An operational failure the user can fix. The message follows *subject: problem (value); remedy*;
 * `code` is stable for logs and tests; `cause` keeps the underlying error; `details` keeps
 * structured evidence for the log (e.g. the CA's whole authorization), never the message.
 */
export class GatewayError extends Error {
  readonly details: object | undefined;

  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown; details?: object },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.details = options?.details;
  }
}
