/** Structured event log: one JSON object per line, with a stable dotted `event` name. */
export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/** Values a log line may carry. Never put cookies, passwords, tokens or keys in here. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined | readonly unknown[] | object>>;

/** Writes one line per event to a stream (stdout for `gateway serve`): JSON (default) or logfmt. */
export class JsonLineLogger implements Logger {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly now: () => Date = () => new Date(),
    private readonly format: "json" | "logfmt" = "json",
  ) {}

  info(event: string, fields: LogFields = {}): void {
    this.write("info", event, fields);
  }

  warn(event: string, fields: LogFields = {}): void {
    this.write("warn", event, fields);
  }

  error(event: string, fields: LogFields = {}): void {
    this.write("error", event, fields);
  }

  private write(level: string, event: string, fields: LogFields): void {
    const record = { time: this.now().toISOString(), level, event, ...fields };
    this.out.write(`${this.format === "json" ? JSON.stringify(record) : toLogfmt(record)}\n`);
  }
}

/** Drops every event: for one-shot commands whose output is their own report (`renew --quiet`, `status`). */
export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Renders an error and its `cause` chain on one line, the way the CLI and the logs show it. A
 * cause whose message its wrapper already quotes (a CA's detail, an errno text) is not repeated.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && e !== null && parts.length < 8; ) {
    const message = e instanceof Error ? e.message : String(e);
    if (!parts.some((p) => p.includes(message))) parts.push(message);
    if (!(e instanceof Error)) break;
    e = e.cause;
  }
  return parts.join(": ");
}

/** key=value pairs; values with spaces, quotes or = are quoted; objects as JSON. */
function toLogfmt(record: Record<string, unknown>): string {
  return Object.entries(record)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const text = typeof v === "string" ? v : JSON.stringify(v);
      return `${k}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
    })
    .join(" ");
}
