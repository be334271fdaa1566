import { constants, createWriteStream, openSync } from "node:fs";
import { access } from "node:fs/promises";
import { ServerResponse, type IncomingMessage } from "node:http";
import { Http2ServerResponse } from "node:http2";
import { dirname } from "node:path";
import type { IncomingRequest } from "../guard/incoming-request.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, type Logger } from "../platform/logger.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** Query parameters whose values never reach a log: Jupyter's ?token= and anything like it. */
const SECRET_NAMES = "token|password|_xsrf|access_token|auth";
const SECRET_PARAM = new RegExp(`^(?:${SECRET_NAMES})$`, "i");
/** The same inside a parameter's decoded value: Jupyter's /login?next=%2Flab%3Ftoken%3D… */
const SECRET_INSIDE = new RegExp(`[?&](?:${SECRET_NAMES})=`, "i");
/** user:password@ in an absolute-form target. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i;

/**
 * The access log in nginx's combined format, so goaccess and fail2ban read it unchanged:
 * `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.
 * Secret query values, in the target and the Referer, are replaced by REDACTED. Each line shows the request as the client sent it
 * (target, Referer), not as it was rewritten for the notebook. A WebSocket is one line when it
 * closes, like nginx's: status 101 (or the refusal's), the bytes sent to the client (the response
 * head included), then ` ws_received=<bytes> ws_seconds=<duration>`, which combined-format
 * readers ignore.
 * A file that cannot be opened stops the start (GatewayError); a reopen that fails, or a write
 * that fails later (disk full), is logged once and never stops the gateway.
 */
export class AccessLog {
  /** null after a write error: lines are dropped until a reopen succeeds. */
  private stream: NodeJS.WritableStream | null;

  constructor(
    private readonly target: string,
    private readonly stdout: NodeJS.WritableStream,
    private readonly logger: Logger,
  ) {
    this.stream = this.open();
  }

  write(request: RequestAsSent, status: number, bodyBytes: number, now: Date, session?: WebSocketSession): void {
    if (!this.stream) return;
    const line = formatCombined(request, status, bodyBytes, now);
    this.stream.write(session ? `${line} ws_received=${session.receivedBytes} ws_seconds=${(session.durationMs / 1000).toFixed(3)}\n` : `${line}\n`);
  }

  /** SIGHUP: reopen the file, after logrotate moved it. On failure the open file (if any) stays in use. */
  reopen(): void {
    if (this.target === "stdout") return;
    let next: NodeJS.WritableStream;
    try {
      next = this.open();
    } catch (err) {
      const keeps = this.stream ? "lines keep going to the file open before the reopen" : "lines are dropped until a reopen succeeds";
      this.logger.error("access_log.reopen_failed", { file: this.target, error: describeError(err), hint: `${keeps}; fix it and send SIGHUP again` });
      return;
    }
    this.stream?.end();
    this.stream = next;
  }

  /** At shutdown; a WebSocket that closes after this (its line comes at close) is not logged. */
  close(): void {
    if (this.target !== "stdout") this.stream?.end();
    this.stream = null;
  }

  /** Opens the file at once (not when the first line is written), so the caller learns whether it can. */
  private open(): NodeJS.WritableStream {
    if (this.target === "stdout") return this.stdout;
    let fd: number;
    try {
      fd = openSync(this.target, "a", 0o640);
    } catch (err) {
      throw accessLogError(this.target, err);
    }
    const stream = createWriteStream(this.target, { fd });
    // A failed write destroys the stream, so this runs once per opened file.
    stream.on("error", (err) => {
      if (this.stream === stream) this.stream = null;
      this.logger.error("access_log.write_failed", { file: this.target, error: describeError(err), hint: "access log lines are dropped until SIGHUP reopens the file" });
    });
    return stream;
  }
}

/** Why the access log file cannot be opened for appending, or null; changes nothing (`gateway check`). */
export async function findAccessLogProblem(target: string): Promise<GatewayError | null> {
  if (target === "stdout") return null;
  try {
    await access(target, constants.W_OK).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
      await access(dirname(target), constants.W_OK);
    });
    return null;
  } catch (err) {
    return accessLogError(target, err);
  }
}

function accessLogError(target: string, cause: unknown): GatewayError {
  const code = (cause as NodeJS.ErrnoException).code;
  const folder = dirname(target);
  const problem =
    code === "ENOENT" ? `the folder ${folder} does not exist (ENOENT); create it for the gateway's user (mkdir -p ${folder})`
    : code === "EACCES" || code === "EPERM" ? `permission denied (${code}); make ${folder} and the file writable for the gateway's user`
    : `cannot be opened for appending (${describeError(cause)}); fix the path`;
  return new GatewayError("logs.access_unwritable", `logs.access ${target}: ${problem}, or set logs.access: stdout`, { cause });
}

/**
 * The parts of a request the access log shows, taken when it arrives: the guard rewrites an
 * absolute-form target, and the proxy a same-site Referer, for the notebook.
 */
export interface RequestAsSent {
  readonly client: string | undefined;
  readonly method: string | undefined;
  readonly target: string | undefined;
  readonly httpVersion: string;
  readonly referer: string | string[] | undefined;
  readonly userAgent: string | string[] | undefined;
}

/** A WebSocket's other direction and length, for its line at close. */
export interface WebSocketSession {
  readonly receivedBytes: number;
  readonly durationMs: number;
}

export function requestAsSent(req: IncomingRequest): RequestAsSent {
  return { client: req.socket.remoteAddress, method: req.method, target: req.url, httpVersion: req.httpVersion, referer: req.headers.referer, userAgent: req.headers["user-agent"] };
}

export function formatCombined(r: RequestAsSent, status: number, bodyBytes: number, now: Date): string {
  const request = `${r.method ?? "-"} ${redact(r.target ?? "")} HTTP/${r.httpVersion}`;
  // A Referer holds the page's query too: /lab?token=… right after a token login.
  return `${r.client ?? "-"} - - [${timeLocal(now)}] "${quote(request)}" ${status} ${bodyBytes} "${quote(redact(headerValue(r.referer)))}" "${quote(headerValue(r.userAgent))}"`;
}

/** nginx's $time_local, in UTC: 10/Oct/2026:13:55:36 +0000. */
function timeLocal(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** A URL with its secrets REDACTED: names matched decoded (%74oken is token to the notebook), values searched decoded. */
function redact(url: string): string {
  return url.replace(USERINFO, "$1REDACTED@").replace(/([?&])([^=&#]*)=([^&#]*)/g, (param: string, separator: string, name: string, value: string) =>
    SECRET_PARAM.test(decoded(name)) || SECRET_INSIDE.test(decoded(value)) ? `${separator}${name}=REDACTED` : param);
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

function headerValue(value: string | string[] | undefined): string {
  return typeof value === "string" ? value : "-";
}

/** As nginx escapes: quotes, backslashes, control bytes and every byte past 0x7e as \xHH (headers arrive as latin1). */
function quote(text: string): string {
  return text.replace(/["\\]|[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * A response that counts the body bytes it is given: the access log's $body_bytes_sent (headers
 * written with writeHead are not readable back, so Content-Length cannot tell it).
 */
export class CountingResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  bodyBytes = 0;

  override write(chunk: unknown, ...rest: unknown[]): boolean {
    this.bodyBytes += byteLengthOf(chunk);
    return (ServerResponse.prototype.write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  }

  override end(...args: unknown[]): this {
    if (typeof args[0] !== "function") this.bodyBytes += byteLengthOf(args[0]);
    return (ServerResponse.prototype.end as (...args: unknown[]) => this).apply(this, args);
  }
}

/** The same for an HTTP/2 response, whose end(chunk) hands the chunk to write(). */
export class CountingHttp2Response extends Http2ServerResponse {
  bodyBytes = 0;

  override write(chunk: unknown, ...rest: unknown[]): boolean {
    this.bodyBytes += byteLengthOf(chunk);
    return (Http2ServerResponse.prototype.write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  }
}

function byteLengthOf(chunk: unknown): number {
  if (typeof chunk === "string") return Buffer.byteLength(chunk);
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}
