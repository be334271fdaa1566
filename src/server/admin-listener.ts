import { createServer, type Server } from "node:http";

/** What the admin endpoint reports. */
export interface AdminSources {
  /** The same data as `gateway status`, as JSON. */
  readonly status: () => Promise<unknown>;
  /** Prometheus text format (with workers, summed over them: they are asked over IPC). */
  readonly metrics: () => Promise<string>;
}

/**
 * The admin endpoint, on loopback only (the config refuses anything else): /healthz for Docker's
 * HEALTHCHECK and systemd, /status, and /metrics for Prometheus.
 */
export function createAdminListener(sources: AdminSources): Server {
  return createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET") {
      res.writeHead(405, { allow: "GET" }).end();
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/metrics") {
      sources.metrics().then(
        (text) => res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(text),
        () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable; see the gateway's log\n"),
      );
    } else if (path === "/status") {
      sources.status().then(
        (status) => res.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(status, null, 2)}\n`),
        () => res.writeHead(500, { "content-type": "text/plain" }).end("status unavailable; see the gateway's log\n"),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("admin endpoints: /healthz /status /metrics\n");
    }
  });
}
