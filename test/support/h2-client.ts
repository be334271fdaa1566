import { once } from "node:events";
import type { CuttableConnection } from "./cuttable-connection.js";
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";

/** What an HTTP/2 client saw of one request; a reset or a GOAWAY shows as `error`, never a throw. */
export interface H2Exchange {
  /** 0 when no response HEADERS arrived. */
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly error: string | null;
}

/** An HTTP/2 session to the gateway (ALPN h2 only, so nothing falls back to HTTP/1.1), trusting exactly `ca`. */
export async function connectH2(port: number, servername: string, ca: string): Promise<ClientHttp2Session> {
  const session = connect(`https://${servername}:${port}`, { ca, servername, host: "127.0.0.1", ALPNProtocols: ["h2"] } as Parameters<typeof connect>[1]);
  session.on("error", () => undefined); // a reset or GOAWAY the test causes shows on its streams
  await once(session, "connect");
  return session;
}

/** Opens a request stream on `session`; `endStream: false` leaves the body to the caller. */
export function h2Stream(session: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}, endStream = true): ClientHttp2Stream {
  const stream = session.request({ ":path": path, ...headers }, { endStream });
  stream.on("error", () => undefined); // read through h2Answer's error
  return stream;
}

/** The answer on `stream`, whole or cut; `timeoutMs` bounds the wait. */
export function h2Answer(stream: ClientHttp2Stream, timeoutMs = 15_000): Promise<H2Exchange> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let body = "";
    let error: string | null = null;
    const timer = setTimeout(() => {
      error = `no answer within ${timeoutMs} ms`;
      stream.close();
    }, timeoutMs);
    stream.on("response", (h) => {
      headers = h;
      status = Number(h[":status"]);
    });
    stream.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    stream.on("error", (err) => (error ??= err.message));
    stream.on("close", () => {
      clearTimeout(timer);
      if (stream.rstCode !== undefined && stream.rstCode !== 0) error ??= `stream reset (code ${stream.rstCode})`;
      resolve({ status, headers, body, error });
    });
  });
}

/** One request on `session`, answered. */
export function h2Request(session: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}, body?: Buffer | string): Promise<H2Exchange> {
  const stream = h2Stream(session, path, headers, body === undefined);
  if (body !== undefined) stream.end(body);
  return h2Answer(stream);
}

/** An HTTP/2 session over a connection a test can cut (CuttableConnection, opened with alpn: ["h2"]). */
export async function h2SessionOver(connection: CuttableConnection, servername: string, port: number): Promise<ClientHttp2Session> {
  const session = connect(`https://${servername}:${port}`, { createConnection: () => connection.tls });
  session.on("error", () => undefined);
  await once(session, "connect");
  return session;
}
