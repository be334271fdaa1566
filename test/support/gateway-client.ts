import { request } from "node:https";
import WebSocket from "ws";
import { loopbackLookup } from "./notebook-client.js";

/** What a client saw of one HTTP exchange; never throws, a cut shows as `error` and `complete: false`. */
export interface Exchange {
  /** 0 when no response head arrived. */
  readonly status: number;
  readonly bodyBytes: number;
  /** The whole announced body arrived. */
  readonly complete: boolean;
  /** The start of the body (status pages say what happened). */
  readonly bodyStart: string;
  readonly error: string | null;
}

/**
 * One request to the gateway on a connection of its own that closes afterwards (agent: false,
 * Connection: close), so it leaves no kept-alive socket in the gateway. Trusts exactly `ca`.
 */
export function exchange(port: number, host: string, ca: string, path: string, options: { method?: string; body?: Buffer; timeoutMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    let status = 0;
    let bodyBytes = 0;
    let bodyStart = "";
    let error: string | null = null;
    let complete = false;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, bodyBytes, complete, bodyStart, error });
    };
    const req = request({ host: "127.0.0.1", port, servername: host, ca, path, method: options.method ?? "GET", agent: false, lookup: loopbackLookup, headers: { host: `${host}:${port}`, connection: "close" } }, (res) => {
      status = res.statusCode ?? 0;
      res.on("data", (chunk: Buffer) => {
        if (bodyStart.length < 2048) bodyStart += chunk.toString("utf8", 0, Math.min(chunk.length, 2048));
        bodyBytes += chunk.length;
      });
      res.on("end", () => (complete = res.complete));
      res.on("error", (err) => (error ??= err.message));
      res.on("close", settle);
    });
    const timer = setTimeout(() => {
      error = `no answer within ${options.timeoutMs} ms`;
      req.destroy();
      settle();
    }, options.timeoutMs ?? 15_000);
    req.on("error", (err) => {
      error ??= err.message;
      settle();
    });
    req.end(options.body);
  });
}

/** What a WebSocket client saw: a refused handshake's status, or how an open one closed. */
export interface WebSocketOutcome {
  /** Status of a handshake answered without 101. */
  readonly refusedStatus: number | null;
  readonly opened: boolean;
  readonly closeCode: number | null;
  /** 'error' events: ws's code (e.g. WS_ERR_UNEXPECTED_RSV_1) or message. */
  readonly errors: readonly string[];
}

/** Opens a wss connection to the gateway and follows it; `outcome` resolves once it is closed. */
export function openWebSocket(port: number, host: string, ca: string, path: string): { ws: WebSocket; opened: Promise<boolean>; outcome: Promise<WebSocketOutcome> } {
  const origin = `https://${host}:${port}`;
  const ws = new WebSocket(`wss://${host}:${port}${path}`, { ca, lookup: loopbackLookup, headers: { origin } });
  let refusedStatus: number | null = null;
  let opened = false;
  const errors: string[] = [];
  ws.on("unexpected-response", (_req, res) => {
    refusedStatus = res.statusCode ?? 0;
    res.resume();
    res.once("close", () => ws.terminate());
    res.once("error", () => ws.terminate());
  });
  ws.on("error", (err: Error & { code?: string }) => {
    // terminate() during the handshake reports itself; that is ours, not the gateway's.
    if (refusedStatus === null || !/closed before the connection was established/.test(err.message)) errors.push(err.code ?? err.message);
  });
  const openedPromise = new Promise<boolean>((resolve) => {
    ws.once("open", () => {
      opened = true;
      resolve(true);
    });
    ws.once("close", () => resolve(false));
  });
  const outcome = new Promise<WebSocketOutcome>((resolve) => ws.once("close", (code) => resolve({ refusedStatus, opened, closeCode: code, errors })));
  return { ws, opened: openedPromise, outcome };
}
