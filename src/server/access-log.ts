import { createWriteStream, type WriteStream } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** Query parameters whose values never reach a log: Jupyter's ?token= and anything like it. */
const SECRET_PARAMS = /([?&](?:token|password|_xsrf|access_token|auth)=)[^&#]*/gi;

/**
 * The access log in nginx's combined format, so goaccess and fail2ban read it unchanged:
 * `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.
 * Secret query values are replaced by REDACTED. WebSocket upgrades are not logged.
 */
export class AccessLog {
  private stream: WriteStream | NodeJS.WritableStream;

  constructor(
    private readonly target: string,
    private readonly stdout: NodeJS.WritableStream,
  ) {
    this.stream = this.open();
  }

  write(req: IncomingMessage, res: ServerResponse, bodyBytes: number, now: Date): void {
    this.stream.write(`${formatCombined(req, res.statusCode, bodyBytes, now)}\n`);
  }

  /** SIGHUP: reopen the file, after logrotate moved it. */
  reopen(): void {
    if (this.target === "stdout") return;
    (this.stream as WriteStream).end();
    this.stream = this.open();
  }

  close(): void {
    if (this.target !== "stdout") (this.stream as WriteStream).end();
  }

  private open(): WriteStream | NodeJS.WritableStream {
    return this.target === "stdout" ? this.stdout : createWriteStream(this.target, { flags: "a", mode: 0o640 });
  }
}

export function formatCombined(req: IncomingMessage, status: number, bodyBytes: number, now: Date): string {
  const url = (req.url ?? "").replace(SECRET_PARAMS, "$1REDACTED");
  const request = `${req.method ?? "-"} ${url} HTTP/${req.httpVersion}`;
  return `${req.socket.remoteAddress ?? "-"} - - [${timeLocal(now)}] "${quote(request)}" ${status} ${bodyBytes} "${quote(header(req, "referer"))}" "${quote(header(req, "user-agent"))}"`;
}

/** nginx's $time_local, in UTC: 10/Oct/2026:13:55:36 +0000. */
function timeLocal(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return typeof value === "string" ? value : "-";
}

/** As nginx escapes: quotes, backslashes and control bytes as \xHH. */
function quote(text: string): string {
  return text.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
