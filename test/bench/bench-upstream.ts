import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { WebSocketServer } from "ws";

/** Bodies the upstream serves: a small page resource and a large download. */
export const SMALL_BODY = Buffer.alloc(512, "s");
export const LARGE_BYTES = 32 * 1024 * 1024;
const LARGE_BODY = Buffer.alloc(LARGE_BYTES, "L");

/**
 * The one upstream behind every system: GET /small, GET /large (32 MiB), POST /upload (a sink
 * that answers with the byte count), a WebSocket echo on /ws, and 403 on /api/* like a notebook
 * with a password (the gateway refuses to expose one without). Plain HTTP for the proxies, and
 * the same handler over HTTPS as the "Node serving directly" reference. It runs in a process of
 * its own (this file is its entry), so that the load generators never share its event loop.
 */
export const BENCH_UPSTREAM_MAIN = fileURLToPath(import.meta.url);

export class BenchUpstream {
  private constructor(
    private readonly http: Server,
    private readonly https: Server,
  ) {}

  static async start(tls: { cert: string; key: string }): Promise<BenchUpstream> {
    const http = createHttpServer({ keepAliveTimeout: 60_000 }, handle);
    const https = createHttpsServer({ ...tls, keepAliveTimeout: 60_000 }, handle);
    for (const server of [http, https]) {
      const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: false });
      wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    }
    return new BenchUpstream(http, https);
  }

  get httpPort(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get httpsPort(): number {
    return (this.https.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const server of [this.http, this.https]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  if (path === "/small") {
    res.writeHead(200, { "content-type": "text/plain", "content-length": SMALL_BODY.length });
    res.end(SMALL_BODY);
  } else if (path === "/large") {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": LARGE_BYTES });
    res.end(LARGE_BODY);
  } else if (path === "/upload") {
    let bytes = 0;
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => res.end(String(bytes)));
  } else if (path.startsWith("/api/")) {
    res.writeHead(403, { "content-type": "text/plain" });
    res.end("password required");
  } else {
    res.writeHead(404);
    res.end();
  }
}

// Entry: `node bench-upstream.js CERT KEY` prints {"http": port, "https": port} once listening.
if (process.argv[1] === BENCH_UPSTREAM_MAIN) {
  const [cert = "", key = ""] = process.argv.slice(2);
  const upstream = await BenchUpstream.start({ cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") });
  process.stdout.write(`${JSON.stringify({ http: upstream.httpPort, https: upstream.httpsPort })}\n`);
  process.on("SIGTERM", () => void upstream.stop().then(() => process.exit(0)));
}
