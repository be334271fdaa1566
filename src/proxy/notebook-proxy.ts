import { Agent, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import { TIMEOUTS, type SiteConfig } from "../config/gateway-config.js";
import { applySecurityHeaders } from "../guard/security-headers.js";
import type { Logger } from "../platform/logger.js";
import type { UpstreamHealth } from "../tunnel/upstream-monitor.js";
import { presentToBrowser, presentToNotebook, type Presentation } from "./notebook-headers.js";
import { refuseUpgrade, sendStatusPage } from "./status-page.js";
import { describeUpstreamFailure, upstreamRefusal } from "./upstream-failure.js";

interface Exchange extends Presentation {
  readonly site: SiteConfig;
  /** Whether the last attempt went out on a kept-alive socket, which the notebook may have closed meanwhile. */
  reusedSocket: boolean;
}

/** Methods that may be sent twice (RFC 9110 §9.2.2) and carry no body to replay. */
const REPLAYABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Forwards requests and WebSocket upgrades that the guard allowed to the site's notebook, with
 * http-proxy-3. Bodies stream both ways with no size cap; HTTP has idle (not total) timeouts;
 * WebSockets have no idle timer at all, since a kernel may be quiet for hours.
 */
export class NotebookProxy {
  private readonly proxy = createProxyServer({ xfwd: false, ws: true, proxyTimeout: 0 });
  /** One keep-alive pool per upstream origin: ~2x cheaper per request through an SSH tunnel. */
  private readonly agents = new Map<string, Agent>();
  private readonly exchanges = new WeakMap<IncomingMessage, Exchange>();

  constructor(
    private readonly logger: Logger,
    /** What the gateway knows of a site's tunnel and notebook, to tell failures apart. */
    private readonly health: (site: SiteConfig) => UpstreamHealth,
    /** Sees every answer from a notebook (the login guard counts failed logins here). */
    private readonly observe: (req: IncomingMessage, site: SiteConfig, status: number) => void,
  ) {
    this.proxy.on("proxyReq", (proxyReq, req) => {
      const exchange = this.exchanges.get(req);
      if (exchange) exchange.reusedSocket = proxyReq.reusedSocket;
      // Idle timer: reset by every byte, so a slow big download is fine but a frozen tunnel is not.
      proxyReq.setTimeout(TIMEOUTS.upstreamIdleMs, () => proxyReq.destroy(Object.assign(new Error("upstream idle timeout"), { code: "ETIMEDOUT" })));
    });
    this.proxy.on("proxyRes", (proxyRes, req) => {
      const exchange = this.exchanges.get(req);
      if (!exchange) return;
      this.observe(req, exchange.site, proxyRes.statusCode ?? 0);
      presentToBrowser(proxyRes.headers, exchange);
      applySecurityHeaders(proxyRes.headers, exchange.site);
    });
    this.proxy.on("econnreset", (_err, req) => this.logger.info("proxy.client_aborted", { path: pathOf(req) }));
  }

  web(req: IncomingMessage, res: ServerResponse, site: SiteConfig, publicOrigin: string): void {
    const refusal = upstreamRefusal(site, this.health(site));
    if (refusal) {
      sendStatusPage(res, refusal.status, refusal.title, refusal.hint, site);
      return;
    }
    this.forward(req, res, this.present(req, site, publicOrigin), true);
  }

  private forward(req: IncomingMessage, res: ServerResponse, exchange: Exchange, mayRetry: boolean): void {
    const site = exchange.site;
    // The retry goes out on a new connection: other pooled sockets may be just as stale.
    const agent = mayRetry ? this.agentFor(site.upstream) : false;
    this.proxy.web(req, res, { target: site.upstream.origin, agent }, (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      // A kept-alive socket the notebook (or a restarted tunnel) closed meanwhile: retry once, as nginx does.
      if (mayRetry && exchange.reusedSocket && !res.headersSent && REPLAYABLE_METHODS.has(req.method ?? "") && (code === "ECONNRESET" || code === "EPIPE")) {
        this.logger.info("proxy.retry_stale_connection", { site: site.hosts[0], path: pathOf(req) });
        this.forward(req, res, exchange, false);
        return;
      }
      const failure = describeUpstreamFailure(err as NodeJS.ErrnoException, site, this.health(site), new Date());
      this.logger.warn(`proxy.upstream_${failure.kind}`, { site: site.hosts[0], upstream: site.upstream.host, path: pathOf(req), error: (err as Error).message });
      sendStatusPage(res, failure.status, failure.title, failure.hint, exchange.site);
    });
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, site: SiteConfig, publicOrigin: string): void {
    const refusal = upstreamRefusal(site, this.health(site));
    if (refusal) {
      refuseUpgrade(socket, refusal.status, refusal.title);
      return;
    }
    this.present(req, site, publicOrigin);
    this.proxy.ws(req, socket, head, { target: site.upstream.origin, agent: this.agentFor(site.upstream) }, (err) => {
      const failure = describeUpstreamFailure(err as NodeJS.ErrnoException, site, this.health(site), new Date());
      this.logger.warn(`proxy.upstream_${failure.kind}`, { site: site.hosts[0], upstream: site.upstream.host, path: pathOf(req), websocket: true, error: (err as Error).message });
      refuseUpgrade(socket, failure.status, `${failure.title}. ${failure.hint}`);
    });
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.proxy.close();
  }

  private present(req: IncomingMessage, site: SiteConfig, publicOrigin: string): Exchange {
    const exchange: Exchange = { site, publicOrigin, upstream: site.upstream, clientAddress: req.socket.remoteAddress ?? "", reusedSocket: false };
    presentToNotebook(req.headers, exchange);
    this.exchanges.set(req, exchange);
    return exchange;
  }

  private agentFor(upstream: URL): Agent {
    let agent = this.agents.get(upstream.origin);
    if (!agent) {
      // Free sockets close before Jupyter (tornado) would drop them, so a reused socket is live.
      const options = { keepAlive: true, maxFreeSockets: 64, timeout: 30_000, scheduling: "lifo" as const };
      agent = upstream.protocol === "https:" ? new HttpsAgent(options) : new Agent(options);
      this.agents.set(upstream.origin, agent);
    }
    return agent;
  }
}

/** The request path without its query: query strings may hold tokens (`?token=`), which never reach the log. */
function pathOf(req: IncomingMessage): string {
  return (req.url ?? "").split("?")[0] ?? "";
}
