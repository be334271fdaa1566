import type { Duplex } from "node:stream";
import type { GatewayConfig } from "../config/gateway-config.js";
import type { SiteTable } from "../config/site-table.js";
import { isLoginAttempt, type LoginGate } from "../guard/login-throttle.js";
import type { Clock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import type { Metrics } from "../platform/metrics.js";
import { NotebookProxy, type UpstreamGate } from "../proxy/notebook-proxy.js";
import type { SniContexts } from "../tls/sni-context.js";
import { AccessLog } from "./access-log.js";
import { createHttpsListener, type ClientCertificatePolicy, type HttpsListener } from "./https-listener.js";
import { drain, listen } from "./lifecycle.js";

/** What HttpsServing works with; the single-process gateway and each worker give their own. */
export interface HttpsServingDeps {
  readonly config: GatewayConfig;
  /** Read per request, so a reload applies to the next request. */
  readonly sites: () => SiteTable;
  readonly sni: SniContexts;
  readonly upstreams: UpstreamGate;
  readonly logins: LoginGate;
  readonly clientCerts: ClientCertificatePolicy;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly stdout: NodeJS.WritableStream;
}

/**
 * The request path of one process: the HTTPS listener, the proxy to the notebooks, the access log
 * and the request metrics. The single-process gateway runs one; with `workers:`, each worker does.
 */
export class HttpsServing {
  private readonly upgraded = new Set<Duplex>();
  private readonly proxy: NotebookProxy;
  private readonly accessLog: AccessLog | null;
  private server: HttpsListener | undefined;

  constructor(private readonly deps: HttpsServingDeps) {
    const { config, logins, metrics, logger } = deps;
    this.accessLog = config.logs.access ? new AccessLog(config.logs.access, deps.stdout, logger) : null;
    this.proxy = new NotebookProxy(logger, deps.upstreams, (req, site, clientAddress, status) => {
      if (isLoginAttempt(site, req.method, req.url)) logins.record(site, clientAddress, status);
    }, config.timeouts);
    metrics.gauge("gateway_websockets_open", "Open upgraded connections (kernel and terminal WebSockets).", () => [[{}, this.upgraded.size]]);
  }

  /** Listens on `port` (0: any; workers share the first worker's) and returns the port bound. */
  async listen(port: number): Promise<number> {
    const { config, metrics, clock } = this.deps;
    this.server = createHttpsListener({
      ...this.deps,
      proxy: this.proxy,
      upgraded: this.upgraded,
      timeouts: config.timeouts,
      http2: config.listen.http2,
      onResponse: (request, status, site, bodyBytes, session) => {
        metrics.count("gateway_requests_total", "HTTP responses sent (a WebSocket counts when it closes), by site and status.", { site, status: String(status) });
        this.accessLog?.write(request, status, bodyBytes, clock.now(), session);
      },
    });
    return listen(this.server, port, config.listen.address, "listen.https");
  }

  /** For logrotate, at SIGHUP. */
  reopenLog(): void {
    this.accessLog?.reopen();
  }

  /** Drains requests and closes WebSockets, then the access log and the upstream pools. Safe before listen(). */
  async stop(): Promise<void> {
    if (this.server) await drain(this.server, this.upgraded, this.deps.config.timeouts.drainMs);
    this.accessLog?.close();
    this.proxy.close();
  }
}
