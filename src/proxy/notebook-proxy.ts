import { ServerResponse, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Http2ServerRequest } from "node:http2";
import { Socket } from "node:net";
import { PassThrough, type Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import { Pool, type Dispatcher } from "undici";
import { LIMITS, type SiteConfig, type TimeoutsConfig } from "../config/gateway-config.js";
import type { IncomingRequest, OutgoingResponse } from "../guard/incoming-request.js";
import { applySecurityHeaders } from "../guard/security-headers.js";
import type { Logger } from "../platform/logger.js";
import { isUnauthenticatedApiCall, type UpstreamHealth } from "../tunnel/upstream-monitor.js";
import { withoutHopByHop } from "./hop-by-hop.js";
import { ResponseRelay } from "./response-relay.js";
import { presentToBrowser, presentToNotebook, type Presentation } from "./notebook-headers.js";
import { CLOSE_GRACE_MS, closeWithin, refuseUpgrade, sendStatusPage } from "./status-page.js";
import { describeUpstreamFailure, errnoOf, isConnectionFailure, upstreamRefusal, type Refusal, type UpstreamFailure } from "./upstream-failure.js";

interface Exchange extends Presentation {
  readonly site: SiteConfig;
}

/** How an upgrade was answered, for its access log line: 101, the notebook's refusal, or the gateway's. */
export interface UpgradeOutcome {
  status: number;
}

/** A WebSocket upgrade in flight: the notebook's answer started (any status), and its socket once it answered 101. */
interface Upgrade {
  readonly site: SiteConfig;
  readonly path: string;
  readonly outcome: UpgradeOutcome;
  answered: boolean;
  upstreamSocket: Duplex | null;
}

/** One notebook's keep-alive pool and the requests given to it that have not settled yet. */
interface UpstreamPool {
  readonly pool: Pool;
  inFlight: number;
}

/** Methods that may be sent twice (RFC 9110 §9.2.2) and carry no body to replay. */
const REPLAYABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** What the proxy asks of the upstream monitor (UpstreamMonitor; a test gives a stand-in). */
export interface UpstreamGate {
  health(site: SiteConfig): UpstreamHealth;
  /** null when the site's notebook was proven password-protected since it last came up; else a probe to wait for. */
  whenProven(site: SiteConfig): Promise<void> | null;
  /** A connection to `upstream` opened or closed: while one stays open, the notebook has not restarted. */
  connectionOpened(upstream: URL): void;
  connectionClosed(upstream: URL): void;
  /** A connection to `upstream` failed: prove the notebook again before the next request. */
  invalidate(upstream: URL): void;
  /** The notebook answered an API request without credentials with 2xx: it has no password. */
  markUnprotected(site: SiteConfig): void;
}

/**
 * Forwards requests and WebSocket upgrades that the guard allowed to the site's notebook, once
 * the notebook is proven password-protected since it (or its tunnel) last came up: nothing
 * reaches an upstream before that. Requests go through an undici keep-alive pool per notebook
 * (measured ~1.8x the requests per second of http-proxy-3's web() on small responses, same
 * machine and run); upgrades through http-proxy-3's ws(). Bodies stream both ways with no size
 * cap; HTTP has idle (not total) timeouts; WebSockets have no idle timer once open, since a
 * kernel may be quiet for hours. Every socket error has an owner here, in every phase.
 */
export class NotebookProxy {
  private readonly wsProxy = createProxyServer({ xfwd: false, ws: true, proxyTimeout: 0 });
  /** Upgrades by their client socket, from the request to the notebook until both sockets closed. */
  private readonly upgrades = new WeakMap<Duplex, Upgrade>();
  /** Open WebSockets per site (by its first name, so that a reload keeps the count), for the cap. */
  private readonly openWebSockets = new Map<string, number>();
  /** Keep-alive pools per upstream origin: ~2x cheaper per request through an SSH tunnel. */
  private readonly pools = new Map<string, UpstreamPool>();
  /** The same pools by the site's URL object: URL's origin getter builds a string at every call. */
  private readonly poolsByUrl = new WeakMap<URL, UpstreamPool>();

  constructor(
    private readonly logger: Logger,
    private readonly upstreams: UpstreamGate,
    /** Sees every answer from a notebook (the login guard counts failed logins here). */
    private readonly observe: (req: IncomingRequest, site: SiteConfig, clientAddress: string, status: number) => void,
    private readonly timeouts: TimeoutsConfig,
  ) {
    // http-proxy-3 re-emits client-socket errors here; with no listener it throws them (GUIDE example 7).
    this.wsProxy.on("error", (err, _req, socket) => this.onClientSocketError(err, socket as Duplex));
    this.wsProxy.on("proxyReqWs", (proxyReq, _req, socket) => this.watchUpgrade(proxyReq, socket));
  }

  web(req: IncomingRequest, res: OutgoingResponse, site: SiteConfig, publicOrigin: string): void {
    const hasBody = hasRequestBody(req);
    const exchange = this.exchangeOf(req, site, publicOrigin);
    // Hop-by-hop headers go first, so a client's Connection header cannot name (and so remove) the ones the gateway sets.
    const headers = withoutHopByHop(req.headers);
    presentToNotebook(headers, exchange);
    this.whenAdmitted(site, req, () => this.forward(req, res, exchange, headers, hasBody, true), (refusal) => sendStatusPage(res, refusal.status, refusal.title, refusal.hint, site, refusal.headers));
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, site: SiteConfig, publicOrigin: string, outcome: UpgradeOutcome): void {
    const headers = withoutHopByHop(req.headers);
    presentToNotebook(headers, this.exchangeOf(req, site, publicOrigin));
    // http-proxy-3 sends req.headers: the presented copy, with the upgrade's own hop-by-hop pair put back.
    req.headers = { ...headers, connection: "Upgrade", upgrade: "websocket" };
    this.whenAdmitted(site, req, () => this.forwardUpgrade(req, socket, head, site, outcome), (refusal) => {
      outcome.status = refusal.status;
      refuseUpgrade(socket, refusal.status, `${refusal.title}. ${refusal.hint}`);
    });
  }

  close(): void {
    for (const { pool } of this.pools.values()) pool.destroy().catch((err: unknown) => this.logger.warn("proxy.pool_close_failed", { error: (err as Error).message }));
    this.wsProxy.close();
  }

  /**
   * Runs `proceed` once the notebook is proven (probing first when it is not, which is also how
   * the first request after a start or a notebook restart waits), or `refuse` with the page that
   * says why not: no password, not reachable, too busy.
   */
  private whenAdmitted(site: SiteConfig, req: IncomingRequest, proceed: () => void, refuse: (refusal: Refusal) => void): void {
    const decide = (): void => {
      if (req.socket.destroyed) return; // the client left while the notebook was being probed
      const refusal = upstreamRefusal(site, this.upstreams.health(site), new Date()) ?? this.overload(site, req);
      if (refusal) {
        this.logger.warn(`proxy.upstream_${refusal.kind}`, { site: site.hosts[0], upstream: site.upstream.host, path: pathOf(req), ...(req.headers.upgrade ? { websocket: true } : {}) });
        refuse(refusal);
      } else proceed();
    };
    const probing = this.upstreams.whenProven(site);
    if (probing === null) decide();
    else probing.then(decide, (err: unknown) => refuse(describeUpstreamFailure(err as NodeJS.ErrnoException, site, this.upstreams.health(site), new Date())));
  }

  /** Past the limits (README: limits) a one-person notebook never meets: answer 503 at once instead of queueing. */
  private overload(site: SiteConfig, req: IncomingRequest): Refusal | null {
    const waiting = req.headers.upgrade ? (this.openWebSockets.get(site.hosts[0] ?? "") ?? 0) >= LIMITS.webSocketsPerSite : this.poolFor(site.upstream).inFlight >= LIMITS.upstreamConnections + LIMITS.queuedRequestsPerUpstream;
    if (!waiting) return null;
    return {
      status: 503,
      kind: "busy",
      title: "The gateway is busy",
      hint: req.headers.upgrade
        ? `This notebook already has ${LIMITS.webSocketsPerSite} open WebSockets (kernels and terminals): close some tabs or shut down unused kernels, then reload.`
        : `${LIMITS.queuedRequestsPerUpstream} requests are already waiting for the notebook at ${site.upstream.host}, which uses at most ${LIMITS.upstreamConnections} connections. Try again in a few seconds.`,
      headers: { "retry-after": "5" },
    };
  }

  private forward(req: IncomingRequest, res: OutgoingResponse, exchange: Exchange, headers: IncomingHttpHeaders, hasBody: boolean, mayRetry: boolean): void {
    const site = exchange.site;
    const options: Dispatcher.DispatchOptions = {
      path: req.url ?? "/",
      method: (req.method ?? "GET") as Dispatcher.HttpMethod,
      headers: headers as Record<string, string | string[]>,
      body: hasBody ? bodyOf(req) : null,
      // Idle timers, reset by every byte: a slow big download is fine, a frozen tunnel is not.
      headersTimeout: this.timeouts.upstreamIdleMs,
      bodyTimeout: this.timeouts.upstreamIdleMs,
    };
    const upstream = this.poolFor(site.upstream);
    upstream.inFlight++;
    const relay = new ResponseRelay(res, {
      onHeaders: (statusCode, responseHeaders) => {
        if (statusCode > 599) {
          // RFC 9110 §15: 600-999 are not HTTP; nothing downstream knows what they mean.
          const failure = this.failure(Object.assign(new Error(`status ${statusCode}`), { code: "EPROTO" }), site, pathOf(req), false);
          sendStatusPage(res, failure.status, failure.title, failure.hint, site);
          return false;
        }
        this.observe(req, site, exchange.clientAddress, statusCode);
        if (statusCode >= 200 && statusCode < 300 && !site.allowUnprotectedUpstream && isUnauthenticatedApiCall(site, req.method, req.url, headers)) {
          // An open notebook: this answer (a file, a kernel, a terminal) never reaches the client.
          this.upstreams.markUnprotected(site);
          const refusal = upstreamRefusal(site, this.upstreams.health(site), new Date());
          if (refusal) {
            this.logger.error(`proxy.upstream_${refusal.kind}`, { site: site.hosts[0], upstream: site.upstream.host, path: pathOf(req) });
            sendStatusPage(res, refusal.status, refusal.title, refusal.hint, site);
            return false;
          }
        }
        // The notebook answered before reading the whole upload: close the connection after this
        // answer rather than read the rest of an upload nobody wants.
        // (HTTP/2 needs nothing: the listener drops the rest of that stream alone.)
        if (hasBody && !req.complete && res instanceof ServerResponse) res.shouldKeepAlive = false;
        presentToBrowser(responseHeaders, exchange);
        applySecurityHeaders(responseHeaders, site);
        res.writeHead(statusCode, responseHeaders);
        return true;
      },
      onSettled: () => upstream.inFlight--,
      onError: (err, clientGone) => {
        if (clientGone) {
          this.logger.info("proxy.client_aborted", { path: pathOf(req) });
          return;
        }
        const code = errnoOf(err);
        if (isConnectionFailure(code)) this.upstreams.invalidate(site.upstream);
        // A kept-alive socket the notebook (or a restarted tunnel) closed meanwhile: retry once, as
        // nginx does, after proving the notebook again (it may be a new one).
        if (mayRetry && !hasBody && !res.headersSent && REPLAYABLE_METHODS.has(req.method ?? "") && (code === "ECONNRESET" || code === "EPIPE")) {
          this.logger.info("proxy.retry_stale_connection", { site: site.hosts[0], path: pathOf(req) });
          this.whenAdmitted(site, req, () => this.forward(req, res, exchange, headers, hasBody, false), (refusal) => sendStatusPage(res, refusal.status, refusal.title, refusal.hint, site, refusal.headers));
          return;
        }
        if (res.headersSent) {
          // Cut mid-body: the client must see a truncated response, not a complete-looking one.
          this.logger.warn("proxy.upstream_reset", { site: site.hosts[0], upstream: site.upstream.host, path: pathOf(req), error: err.message });
          res.destroy();
          return;
        }
        const failure = this.failure(Object.assign(err, { code }), site, pathOf(req), false);
        sendStatusPage(res, failure.status, failure.title, failure.hint, site);
      },
    });
    upstream.pool.dispatch(options, relay);
  }

  private forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, site: SiteConfig, outcome: UpgradeOutcome): void {
    if (socket.destroyed) return;
    const upgrade: Upgrade = { site, path: pathOf(req), outcome, answered: false, upstreamSocket: null };
    this.upgrades.set(socket, upgrade);
    const name = site.hosts[0] ?? "";
    this.openWebSockets.set(name, (this.openWebSockets.get(name) ?? 0) + 1);
    socket.once("close", () => this.openWebSockets.set(name, (this.openWebSockets.get(name) ?? 1) - 1));
    this.wsProxy.ws(req, socket, head, { target: site.upstream.origin }, (err) => this.onUpgradeError(err as NodeJS.ErrnoException, socket, upgrade));
  }

  /**
   * The request to the notebook for an upgrade, before http-proxy-3 adds its own listeners:
   * an idle timer until the notebook answers (504 after timeouts.upstream_idle), and, once it
   * answered 101, the two sockets tied so that neither outlives the other.
   */
  private watchUpgrade(proxyReq: ClientRequest, socket: Duplex): void {
    const upgrade = this.upgrades.get(socket);
    if (!upgrade) return; // every ws() call comes from forwardUpgrade, which registers it first
    proxyReq.setTimeout(this.timeouts.upstreamIdleMs, () => proxyReq.destroy(Object.assign(new Error(`no answer to the WebSocket upgrade in ${this.timeouts.upstreamIdleMs / 1000} s`), { code: "ETIMEDOUT" })));
    const abandon = (): void => {
      if (!upgrade.upstreamSocket) proxyReq.destroy();
    };
    socket.once("close", abandon);
    proxyReq.once("upgrade", (_res, upstreamSocket: Duplex) => {
      socket.off("close", abandon);
      upgrade.answered = true;
      upgrade.outcome.status = 101;
      upgrade.upstreamSocket = upstreamSocket;
      if (socket.destroyed) {
        upstreamSocket.destroy();
        return;
      }
      // An open WebSocket is a live connection to the notebook: while it stays, no restart went
      // unseen. TCP keep-alive after a minute idle, so a vanished notebook host does not keep it
      // (and with it the proof) for the system's default two hours.
      if (upstreamSocket instanceof Socket) upstreamSocket.setKeepAlive(true, 60_000);
      const upstream = upgrade.site.upstream;
      this.upstreams.connectionOpened(upstream);
      socket.once("close", () => upstreamSocket.destroy());
      upstreamSocket.once("close", () => {
        this.upstreams.connectionClosed(upstream);
        // The notebook closed: the browser gets what was sent, then the connection closes even if it never answers.
        closeWithin(socket, CLOSE_GRACE_MS);
      });
    });
    // A refusal (e.g. 403) whose body the notebook cuts short: http-proxy-3 waits for an end that never comes.
    proxyReq.once("response", (res: IncomingMessage) => {
      upgrade.answered = true;
      upgrade.outcome.status = res.statusCode ?? 502;
      res.once("close", () => closeWithin(socket, CLOSE_GRACE_MS));
    });
  }

  /** http-proxy-3's failure callback; it runs before the 101 and, for upstream socket errors, after it too. */
  private onUpgradeError(err: NodeJS.ErrnoException, socket: Duplex, upgrade: Upgrade): void {
    const site = upgrade.site;
    if (upgrade.upstreamSocket) {
      // After the 101 the stream belongs to the WebSocket: no HTTP page, just close both sides.
      this.logger.warn("proxy.websocket_upstream_reset", { site: site.hosts[0], upstream: site.upstream.host, path: upgrade.path, error: err.message });
      upgrade.upstreamSocket.destroy();
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      this.logger.info("proxy.client_aborted", { path: upgrade.path, websocket: true });
      return;
    }
    if (upgrade.answered) {
      // The notebook's own answer (a refusal) was being relayed: a second response cannot follow it.
      this.logger.warn("proxy.upstream_reset", { site: site.hosts[0], upstream: site.upstream.host, path: upgrade.path, websocket: true, error: err.message });
      socket.destroy();
      return;
    }
    if (isConnectionFailure(err.code)) this.upstreams.invalidate(site.upstream);
    const failure = this.failure(err, site, upgrade.path, true);
    upgrade.outcome.status = failure.status;
    refuseUpgrade(socket, failure.status, `${failure.title}. ${failure.hint}`);
  }

  /** What the client is told about a failed exchange with the notebook, logged with the error. */
  private failure(err: NodeJS.ErrnoException, site: SiteConfig, path: string, websocket: boolean): UpstreamFailure {
    const failure = describeUpstreamFailure(err, site, this.upstreams.health(site), new Date());
    this.logger.warn(`proxy.upstream_${failure.kind}`, { site: site.hosts[0], upstream: site.upstream.host, path, ...(websocket ? { websocket } : {}), error: err.message });
    return failure;
  }

  /** The browser's socket failed (a closed laptop lid is a reset mid-write): an everyday event, not an error. */
  private onClientSocketError(err: Error, socket: Duplex): void {
    const upgrade = this.upgrades.get(socket);
    this.logger.info("proxy.client_aborted", { path: upgrade?.path ?? null, websocket: true, error: err.message });
    socket.destroy();
  }

  private exchangeOf(req: IncomingRequest, site: SiteConfig, publicOrigin: string): Exchange {
    return { site, publicOrigin, upstream: site.upstream, clientAddress: req.socket.remoteAddress ?? "" };
  }

  private poolFor(upstream: URL): UpstreamPool {
    let entry = this.poolsByUrl.get(upstream) ?? this.pools.get(upstream.origin);
    if (!entry) {
      // Idle sockets close before Jupyter (tornado) would drop them, so a reused socket is live.
      const pool = new Pool(upstream.origin, { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000, connections: LIMITS.upstreamConnections });
      // The gate trusts a proven notebook only while a connection to it stayed open; with none
      // left, whatever answers next may be a restarted notebook without a password.
      pool.on("connect", () => this.upstreams.connectionOpened(upstream));
      pool.on("disconnect", () => this.upstreams.connectionClosed(upstream));
      pool.on("connectionError", () => this.upstreams.invalidate(upstream));
      entry = { pool, inFlight: 0 };
      this.pools.set(upstream.origin, entry);
    }
    this.poolsByUrl.set(upstream, entry);
    return entry;
  }
}

/** The request path without its query: query strings may hold tokens (`?token=`), which never reach the log. */
function pathOf(req: IncomingRequest): string {
  return (req.url ?? "").split("?")[0] ?? "";
}

/**
 * Whether a body follows the request head: HTTP/1.x says so with Transfer-Encoding or a nonzero
 * Content-Length (RFC 9112 §6.3); HTTP/2 by not ending the stream with its HEADERS frame, and
 * may send DATA without any Content-Length (RFC 9113 §8.1), which undici then sends chunked.
 */
function hasRequestBody(req: IncomingRequest): boolean {
  if (req instanceof Http2ServerRequest) return !req.stream.endAfterHeaders;
  return req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
}

/**
 * The request body for undici, through a PassThrough: undici destroys the body stream it is
 * given, and destroying the request itself would close the client's kept-alive connection. An
 * upload the client abandons ends the upstream request too.
 */
function bodyOf(req: IncomingRequest): PassThrough {
  const body = new PassThrough();
  req.once("aborted", () => body.destroy(new Error("client aborted the upload")));
  return req.pipe(body);
}


