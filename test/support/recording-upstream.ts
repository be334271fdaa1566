import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type ServerOptions } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { notebookStandIn } from "./notebook-stand-in.js";

/** Exactly what reached the upstream for one request or WebSocket handshake. */
export interface RecordedRequest {
  readonly method: string;
  /** The request target as sent on the wire (path and query, still percent-encoded). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
  readonly bodyLength: number;
  readonly bodySha256: string;
}

/**
 * A small HTTP and WebSocket server that records what arrives and answers predictably:
 * `/redirect` 302 to its own absolute address, `/cookie` sets a cookie, anything else 200 with a
 * JSON summary; the gateway's password probe gets a protected notebook's 403 (not recorded); a WebSocket greets, then echoes every message with an "echo:" prefix.
 */
export interface RecordingUpstream {
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Messages the upstream received over WebSockets, in order. */
  readonly messages: string[];
  stop(): Promise<void>;
}

/** `options` go to Node's server: `insecureHTTPParser` records whatever a proxy forwards, however malformed. */
export async function startRecordingUpstream(options: ServerOptions = {}): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  const messages: string[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer(options, notebookStandIn((req, res) => {
    const hash = createHash("sha256");
    let length = 0;
    req.on("data", (chunk: Buffer) => {
      length += chunk.length;
      hash.update(chunk);
    });
    req.on("end", () => {
      const record = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, httpVersion: req.httpVersion, bodyLength: length, bodySha256: hash.digest("hex") };
      requests.push(record);
      const path = (req.url ?? "").split("?")[0];
      if (path === "/redirect") {
        res.writeHead(302, { location: `http://127.0.0.1:${port}/target?from=redirect` }).end();
      } else if (path === "/cookie") {
        res.writeHead(200, { "set-cookie": "session=abc123; Path=/; HttpOnly", "content-type": "text/plain" }).end("cookie set");
      } else {
        res.writeHead(200, { "content-type": "application/json", "x-upstream": "recording" }).end(JSON.stringify({ method: record.method, url: record.url, bodyLength: length }));
      }
    });
  }));
  server.on("upgrade", (req, socket, head) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, httpVersion: req.httpVersion, bodyLength: 0, bodySha256: createHash("sha256").digest("hex") });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send("hello from upstream");
      ws.on("message", (data) => {
        messages.push(data.toString());
        ws.send(`echo:${data.toString()}`);
      });
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    port,
    requests,
    messages,
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
