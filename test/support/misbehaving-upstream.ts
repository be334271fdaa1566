import { createHash } from "node:crypto";
import { EventEmitter, once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

/** 64 KiB: the part of a body that goes out before a misbehaving upstream stops or cuts. */
const FIRST_PART = Buffer.alloc(64 * 1024, "a");
/** What misbehaving paths announce in their Content-Length (they never send all of it). */
const ANNOUNCED_BYTES = 1024 * 1024;

/**
 * A notebook stand-in that behaves by request path, for fault tests and the soak.
 *
 * Healthy: `/ok` (or any unknown path) 200 "ok"; `/bytes/N` N bytes; `/upload` reads the body and
 * answers its length; `/api/kernels` 403 (so the gateway's probe sees a protected notebook);
 * upgrades to `/ws/echo` (or any unknown path) echo, `/ws/flood` sends without pause.
 *
 * Misbehaving: `/hold` accepts and never answers ("held"); `/upload-hold` reads the body and never
 * answers ("body-started"); `/slow-body` sends 64 KiB of an announced 1 MiB, then nothing
 * ("body-sent"); `/reset-mid-body` sends 64 KiB of 1 MiB, then a TCP RST; `/invalid-headers` a
 * header line without a colon; `/huge-headers` a 100 KiB header; `/early-answer` a 413 before
 * reading the body, then reads it; `/early-answer-close` a 413 before reading the body, then closes
 * (with the body unread, the kernel sends a RST); `/304-with-body` a 304 with a 5-byte body;
 * `/unsolicited-100` a 100 Continue nobody asked for, then 200; `/status-999` status 999. Upgrades: `/ws/hold` never answers ("held");
 * `/ws/101-then-hold` a 101, then nothing ("held": the test resets or stops it once the client
 * has the 101); `/ws/reset-after-101` a RST right after its 101; `/ws/stop-after-101` stops the
 * whole server right after its 101 ("stopped"); `/ws/403-cut` a 403 whose body is cut short.
 */
export interface MisbehavingUpstream {
  readonly port: number;
  /** "held", "body-started", "body-sent", "ws-message", "ws-flooding", "stopped": the moment a test cuts at. */
  readonly signals: EventEmitter;
  /** Listens again on the same port after stop(); does nothing while listening. */
  start(): Promise<void>;
  /** Closes the server and destroys every socket it has, WebSockets included. */
  stop(): Promise<void>;
  /** Sockets that misbehaving paths hold and that are still open (the gateway did not close them). */
  heldCount(): number;
  /** Closes the sockets that misbehaving paths hold: destroy() (FIN), or "rst". */
  releaseHeld(how?: "destroy" | "rst"): void;
}

export async function startMisbehavingUpstream(port = 0): Promise<MisbehavingUpstream> {
  const signals = new EventEmitter();
  const sockets = new Set<Socket>();
  const held = new Set<Socket>();
  const byteBodies = new Map<number, Buffer>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  const hold = (socket: Socket, signal: string): void => {
    held.add(socket);
    socket.once("close", () => held.delete(socket));
    // The server's sockets allow half-open connections: the gateway's FIN ends the connection as
    // a notebook would end it (and then only the gateway can still hold it, as an fd).
    socket.once("end", () => socket.destroy());
    // An upgraded socket is handed over paused: without reading, its peer's FIN would never show.
    socket.resume();
    signals.emit(signal);
  };

  const server = createServer((req, res) => {
    const path = pathOf(req);
    const socket = req.socket;
    switch (path) {
      case "/api/kernels":
        res.writeHead(403, { "content-type": "text/plain" }).end("login required\n");
        return;
      case "/upload": {
        let bytes = 0;
        req.on("data", (chunk: Buffer) => (bytes += chunk.length));
        req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ bytes })));
        return;
      }
      case "/hold":
        hold(socket, "held");
        return;
      case "/upload-hold":
        req.once("data", () => signals.emit("body-started"));
        req.resume();
        hold(socket, "held");
        return;
      case "/slow-body":
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": ANNOUNCED_BYTES });
        res.write(FIRST_PART, () => hold(socket, "body-sent"));
        return;
      case "/reset-mid-body":
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": ANNOUNCED_BYTES });
        res.write(FIRST_PART, () => socket.resetAndDestroy());
        return;
      case "/invalid-headers":
        socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nThis line has no colon\r\n\r\nok");
        return;
      case "/huge-headers":
        socket.end(`HTTP/1.1 200 OK\r\nX-Huge: ${"h".repeat(100 * 1024)}\r\nContent-Length: 2\r\n\r\nok`);
        return;
      case "/304-with-body":
        socket.end("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\nhello");
        return;
      case "/unsolicited-100":
        socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n");
        return;
      case "/status-999":
        socket.end("HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nok");
        return;
      case "/early-answer":
        // Node's server reads (and drops) the rest of the body after this.
        res.writeHead(413, { "content-type": "text/plain" }).end("too large\n");
        return;
      case "/early-answer-close":
        res.writeHead(413, { "content-type": "text/plain", connection: "close" }).end("too large\n");
        return;
    }
    const size = /^\/bytes\/(\d+)$/.exec(path)?.[1];
    if (size !== undefined) {
      const n = Number(size);
      let body = byteBodies.get(n);
      if (!body) byteBodies.set(n, (body = Buffer.alloc(n, "b")));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n }).end(body);
      return;
    }
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
  });
  // Like a notebook (tornado), idle kept-alive connections stay open: the gateway's pool decides.
  server.keepAliveTimeout = 60_000;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_err, socket: Socket) => socket.destroy());

  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    switch (pathOf(req)) {
      case "/ws/hold":
        hold(socket, "held");
        return;
      case "/ws/101-then-hold":
        socket.write(switchingProtocols(req), () => hold(socket, "held"));
        return;
      case "/ws/reset-after-101":
        socket.write(switchingProtocols(req), () => socket.resetAndDestroy());
        return;
      case "/ws/stop-after-101":
        socket.write(switchingProtocols(req), () => void stop().then(() => signals.emit("stopped")));
        return;
      case "/ws/403-cut":
        socket.write("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nForbidden: the no", () => socket.destroy());
        return;
      case "/ws/flood":
        wss.handleUpgrade(req, socket, head, (ws) => flood(ws, signals));
        return;
      default:
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on("error", () => ws.terminate());
          ws.on("message", (data, isBinary) => {
            signals.emit("ws-message");
            ws.send(data, { binary: isBinary });
          });
        });
    }
  });

  const start = async (): Promise<void> => {
    if (server.listening) return;
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
  };
  const stop = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const ws of wss.clients) ws.terminate();
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await start();
  return {
    get port() {
      return port;
    },
    signals,
    start,
    stop,
    heldCount: () => held.size,
    releaseHeld: (how = "destroy") => {
      for (const socket of held) {
        if (how === "rst") socket.resetAndDestroy();
        else socket.destroy();
      }
    },
  };
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? "/").split("?")[0] ?? "/";
}

/** A valid 101 for the request (RFC 6455 §4.2.2), written by hand so the test owns the socket after it. */
function switchingProtocols(req: IncomingMessage): string {
  const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"] ?? ""}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

/** Sends 16 KiB messages as fast as the connection takes them, until it closes. */
function flood(ws: WebSocket, signals: EventEmitter): void {
  const message = Buffer.alloc(16 * 1024, "f");
  let failed = false;
  ws.on("error", () => ws.terminate());
  const sent = (err?: Error): void => {
    if (err) failed = true;
  };
  // At most 64 messages a turn: once the socket is gone, sends fail at once without buffering,
  // and readyState stays OPEN until 'close' comes on a later turn.
  const pump = (): void => {
    for (let i = 0; i < 64 && !failed && ws.readyState === ws.OPEN && ws.bufferedAmount < 1024 * 1024; i++) ws.send(message, sent);
    if (!failed && ws.readyState === ws.OPEN) setTimeout(pump, 5);
  };
  pump();
  signals.emit("ws-flooding");
}
