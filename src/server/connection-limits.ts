import type { Server, Socket } from "node:net";
import type { TimeoutsConfig } from "../config/gateway-config.js";
import type { Logger } from "../platform/logger.js";

/** Dropped connections are logged at most this often, with how many were dropped meanwhile. */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * The client-side timers both listeners share (Node's own defaults close a kept-alive connection
 * after 5 s, which races with a client that starts a request just then: see README, timeouts).
 * Idle timers are reset by any traffic; upgraded sockets leave the server and get none.
 */
export function connectionTimers(timeouts: TimeoutsConfig): { headersTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
  return {
    headersTimeout: timeouts.headersMs,
    // Between requests a connection stays open this long, and says so (Keep-Alive: timeout=N).
    keepAliveTimeout: timeouts.clientIdleMs,
    // How often Node enforces headersTimeout; its default (30 s) would let slow headers linger 50 s.
    connectionsCheckingInterval: 1000,
  };
}

/** The closing half of an http(s) server that guardConnections needs. */
interface ConnectionServer extends Server {
  timeout: number;
  keepAliveTimeout: number;
  closeIdleConnections(): void;
}

/**
 * Caps `server` at `maxConnections`, and one client address at `maxPerAddress` (so that one
 * client cannot fill the cap and lock everyone else out); past them a new socket is closed at
 * once (there is no TLS handshake yet to answer a page on) and idle kept-alive connections are
 * closed to make room, as nginx reuses them. Drops are logged. Connections idle for
 * timeouts.client_idle are closed.
 */
export function guardConnections(server: ConnectionServer, maxConnections: number, maxPerAddress: number, listener: string, logger: Logger): void {
  server.timeout = server.keepAliveTimeout;
  server.maxConnections = maxConnections;
  let dropped = 0;
  let lastLogAt = 0;
  const drop = (reason: string, address: string | undefined): void => {
    dropped++;
    const now = Date.now();
    if (now - lastLogAt < DROP_LOG_INTERVAL_MS) return;
    logger.warn("server.connections_dropped", { listener, reason, dropped, client: address ?? null, max_connections: maxConnections, max_per_address: maxPerAddress, hint: "more connections than a notebook needs: a flood, or a client leaking connections" });
    lastLogAt = now;
    dropped = 0;
  };
  const perAddress = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    const count = (perAddress.get(address) ?? 0) + 1;
    if (count > maxPerAddress) {
      socket.destroy();
      drop("per_address", address);
      return;
    }
    perAddress.set(address, count);
    socket.once("close", () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
  });
  server.on("drop", (data?: { remoteAddress?: string }) => {
    server.closeIdleConnections();
    drop("total", data?.remoteAddress);
  });
}
