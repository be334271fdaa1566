import { createServer, type Server } from "node:http";
import { answerHttp01, CHALLENGE_PREFIX } from "../acme/http01-responder.js";
import { LIMITS, type TimeoutsConfig } from "../config/gateway-config.js";
import { hostnameOf, type SiteTable } from "../config/site-table.js";
import { normaliseRequest } from "../guard/request-hygiene.js";
import type { Logger } from "../platform/logger.js";
import { connectionTimers, guardConnections } from "./connection-limits.js";
import { describeError } from "../platform/logger.js";
import type { FileCertStore } from "../tls/cert-store.js";

/**
 * Plain HTTP: after the same request hygiene as HTTPS (an absolute-form target never ends up in a
 * redirect), answers ACME HTTP-01 challenges and sends everything else to https with 308
 * (method and body preserved, RFC 9110 §15.4.9). Names the gateway does not serve get 404:
 * it never redirects to a host it was not configured for.
 */
export function createHttpListener(store: () => FileCertStore, sites: () => SiteTable, httpsPort: () => number, timeouts: TimeoutsConfig, logger: Logger): Server {
  // Requests here are tiny (challenges, redirects): a whole one must arrive within 30 s, or within
  // timeouts.headers if that is longer (Node refuses a headersTimeout above requestTimeout).
  const server = createServer({ ...connectionTimers(timeouts), requestTimeout: Math.max(30_000, timeouts.headersMs) }, (req, res) => {
    const malformed = normaliseRequest(req);
    if (malformed) {
      res.writeHead(malformed.status, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`${malformed.title}: ${malformed.hint}\n`);
      return;
    }
    if ((req.url ?? "").startsWith(CHALLENGE_PREFIX)) {
      answerHttp01(req, res, store()).catch((err: unknown) => {
        logger.error("acme.challenge_read_failed", { error: describeError(err) });
        if (!res.headersSent) res.writeHead(500).end();
      });
      return;
    }
    const host = req.headers.host ?? "";
    if (!sites().lookup(host)) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("This gateway does not serve that name.\n");
      return;
    }
    const name = hostnameOf(host);
    const port = httpsPort() === 443 ? "" : `:${httpsPort()}`;
    const authority = name.includes(":") ? `[${name}]${port}` : `${name}${port}`;
    res.writeHead(308, { location: `https://${authority}${req.url ?? "/"}`, "content-type": "text/plain" }).end();
  });
  guardConnections(server, LIMITS.clientConnections / 4, LIMITS.clientConnectionsPerAddress / 4, "listen.http", logger);
  return server;
}
