import type { Server } from "node:net";
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

/**
 * Caps `server` at `maxConnections` (past it Node closes new sockets at once: no TLS handshake
 * to answer a page on), logs the drops, and closes connections idle for timeouts.client_idle.
 */
export function guardConnections(server: Server & { timeout: number; keepAliveTimeout: number }, maxConnections: number, listener: string, logger: Logger): void {
  server.timeout = server.keepAliveTimeout;
  server.maxConnections = maxConnections;
  let dropped = 0;
  let lastLogAt = 0;
  server.on("drop", () => {
    dropped++;
    const now = Date.now();
    if (now - lastLogAt < DROP_LOG_INTERVAL_MS) return;
    logger.warn("server.connections_dropped", { listener, dropped, max_connections: maxConnections, hint: "more clients than a notebook needs are connected at once: a flood, or a client leaking connections" });
    lastLogAt = now;
    dropped = 0;
  });
}
