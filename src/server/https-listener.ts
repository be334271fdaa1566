import { Server as HttpServer, maxHeaderSize } from "node:http";
import { createServer } from "node:https";
import { createSecureServer, Http2ServerRequest, type Http2Session } from "node:http2";
import type { Duplex } from "node:stream";
import type { Server as TlsServer } from "node:tls";
import { LIMITS, type TimeoutsConfig } from "../config/gateway-config.js";
import type { SiteTable } from "../config/site-table.js";
import type { IncomingRequest, OutgoingResponse } from "../guard/incoming-request.js";
import { checkRequest } from "../guard/request-guard.js";
import { isLoginAttempt, type LoginGate, type LoginLockout } from "../guard/login-throttle.js";
import type { NotebookProxy, UpgradeOutcome } from "../proxy/notebook-proxy.js";
import { refuseUpgrade, sendStatusPage } from "../proxy/status-page.js";
import { describeError, type Logger } from "../platform/logger.js";
import type { SniContexts } from "../tls/sni-context.js";
import { TLS_PROFILE } from "../tls/tls-profile.js";
import { CountingHttp2Response, CountingResponse, requestAsSent, type RequestAsSent, type WebSocketSession } from "./access-log.js";
import { connectionTimers, guardConnections } from "./connection-limits.js";

/**
 * The public HTTPS listener. Requests and WebSocket upgrades take the same path: guard first
 * (nothing reaches the notebook before it allows), then the proxy. `sites` is read per request,
 * so a config reload applies to the next request without dropping connections.
 */
/** Client certificates: asked for when a site requires them; checked per request against revocations. */
export interface ClientCertificatePolicy {
  readonly requested: boolean;
  readonly revokedSerials: () => ReadonlySet<string>;
}

/** What the HTTPS listener works with. */
export interface HttpsListenerDeps {
  readonly sni: SniContexts;
  /** Read per request, so a reload applies to the next request. */
  readonly sites: () => SiteTable;
  readonly proxy: NotebookProxy;
  readonly logins: LoginGate;
  readonly clientCerts: ClientCertificatePolicy;
  /** Open upgraded sockets (WebSockets), closed on shutdown. */
  readonly upgraded: Set<Duplex>;
  readonly timeouts: TimeoutsConfig;
  /** Offer HTTP/2 (ALPN h2) next to HTTP/1.1 (listen.http2). */
  readonly http2: boolean;
  /**
   * Called when a response has been sent, and when a WebSocket closes (with `session`): metrics,
   * access log. `site` is the site's first name, "" when the guard refused the request.
   */
  readonly onResponse: (request: RequestAsSent, status: number, site: string, bodyBytes: number, session?: WebSocketSession) => void;
  readonly logger: Logger;
}

/** The HTTPS listener as lifecycle.ts drains it: for HTTP/2 too, idle connections close first, the rest when their last request ends. */
export interface HttpsListener extends TlsServer {
  timeout: number;
  keepAliveTimeout: number;
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

export function createHttpsListener({ sni, sites, proxy, logins, clientCerts, upgraded, timeouts, http2, onResponse, logger }: HttpsListenerDeps): HttpsListener {
  const tlsOptions = {
    ...TLS_PROFILE,
    SNICallback: sni.SNICallback,
    // A TLS handshake gets as long as request headers do (Node's default: 120 s).
    handshakeTimeout: timeouts.headersMs,
    // Only when a site requires client certificates: ask for one, but let the handshake finish
    // without it (the server side of optional client auth; the guard then requires an authorized,
    // unrevoked certificate per request and answers a page that says what to install).
    ...(clientCerts.requested ? { requestCert: true, rejectUnauthorized: false } : {}),
  };
  const server = http2
    ? createHttp2Listener(tlsOptions, sni, timeouts, logger)
    : createServer({
        ...tlsOptions,
        ALPNCallback: sni.ALPNCallback,
        // No deadline for a whole request (uploads of any size); slow headers are cut (slowloris).
        ServerResponse: CountingResponse,
        ...connectionTimers(timeouts),
        requestTimeout: 0,
      });
  /** Responses not yet closed per connection: an upgrade must not overtake one (pipelining). */
  const openResponses = new WeakMap<object, number>();
  guardConnections(server, LIMITS.clientConnections, LIMITS.clientConnectionsPerAddress, "listen.https", logger);
  sni.attach(server);

  server.on("request", (req: IncomingRequest, res: OutgoingResponse) => {
    const sent = requestAsSent(req);
    const verdict = checkRequest(req, sites(), false, clientCerts.revokedSerials());
    // HTTP/1.x only: an HTTP/2 request has a stream of its own, and upgrades come on HTTP/1.1 connections.
    const socket = req instanceof Http2ServerRequest ? null : req.socket;
    if (socket) openResponses.set(socket, (openResponses.get(socket) ?? 0) + 1);
    res.once("finish", () => {
      // Answered before the whole upload arrived (a refusal, a failure page after the notebook's
      // connection broke): read and drop the rest, as nginx does, or the client's next request
      // on this kept-alive connection waits behind it forever. (After the notebook's own early
      // answer the proxy closes the connection instead.)
      if (!req.complete) req.unpipe().resume();
    });
    // Finished or cut short: either way one line. A client gone before any answer is nginx's 499.
    res.once("close", () => {
      if (socket) openResponses.set(socket, (openResponses.get(socket) ?? 1) - 1);
      const bodyBytes = req.method === "HEAD" ? 0 : (res as CountingResponse | CountingHttp2Response).bodyBytes;
      onResponse(sent, res.headersSent ? res.statusCode : 499, verdict.kind === "allow" ? (verdict.site.hosts[0] ?? "") : "", bodyBytes);
    });
    if (verdict.kind === "deny") {
      logger.info("guard.denied", { status: verdict.status, host: req.headers.host ?? null, method: req.method ?? null, client: req.socket.remoteAddress ?? null });
      sendStatusPage(res, verdict.status, verdict.title, verdict.hint, undefined);
      return;
    }
    const client = req.socket.remoteAddress ?? "";
    if (!isLoginAttempt(verdict.site, req.method, req.url)) {
      proxy.web(req, res, verdict.site, verdict.publicOrigin);
      return;
    }
    const refuseUnchecked = (): void => {
      req.resume();
      sendStatusPage(res, 503, "Login check unavailable", "The gateway could not check this login attempt against its limits, so it was not forwarded. Try again in a few seconds; if it persists, see the gateway's log.", verdict.site, { "retry-after": "5" });
    };
    const admit = (lockout: LoginLockout | null): void => {
      if (lockout?.scope === "unavailable") {
        logger.warn("guard.login_unchecked", { site: verdict.site.hosts[0], client, hint: "the primary did not count this attempt (no answer, or the site is gone after a reload); refused" });
        refuseUnchecked();
        return;
      }
      if (lockout) {
        logger.warn("guard.login_refused", { site: verdict.site.hosts[0], client, scope: lockout.scope, retry_after_s: lockout.retryAfterS });
        req.resume();
        const who = lockout.scope === "address" ? "from your address" : "for this notebook";
        sendStatusPage(res, 429, "Too many failed logins", `Too many wrong passwords ${who}. Try again in ${Math.ceil(lockout.retryAfterS / 60)} minute(s).`, verdict.site, { "retry-after": String(lockout.retryAfterS) });
        return;
      }
      // Gone while a worker asked the primary: nothing reached the notebook.
      if (req.socket.destroyed) return logins.settle(verdict.site, client, false);
      res.once("close", () => logins.settle(verdict.site, client, !res.headersSent));
      proxy.web(req, res, verdict.site, verdict.publicOrigin);
    };
    // A worker asks the primary, which counts for every worker (the request waits, unread).
    const lockout = logins.check(verdict.site, client);
    if (lockout instanceof Promise) {
      // Thrown here it would be an unhandled rejection, which ends the process and all its WebSockets.
      lockout.then(admit).catch((err: unknown) => {
        logger.error("guard.login_check_failed", { site: verdict.site.hosts[0], client, error: describeError(err) });
        if (!res.headersSent && !res.destroyed) refuseUnchecked();
      });
    } else admit(lockout);
  });

  server.on("upgrade", (req, socket: Duplex, head: Buffer) => {
    if ((openResponses.get(req.socket) ?? 0) > 0) {
      // Pipelined behind a response still being sent: a 101 would land inside that body.
      logger.info("guard.denied", { status: 400, reason: "upgrade pipelined behind an unfinished response", client: req.socket.remoteAddress ?? null });
      socket.destroy();
      return;
    }
    const sent = requestAsSent(req);
    const started = performance.now();
    // Counted from here: the response head and the frames after it; received: frames after the request head.
    const tls = req.socket;
    const writtenBefore = tls.bytesWritten;
    const readBefore = tls.bytesRead - head.length;
    // Until someone answers, the client is the one who left (nginx's 499).
    const outcome: UpgradeOutcome = { status: 499 };
    let siteName = "";
    upgraded.add(socket);
    socket.once("close", () => {
      upgraded.delete(socket);
      onResponse(sent, outcome.status, siteName, tls.bytesWritten - writtenBefore, { receivedBytes: tls.bytesRead - readBefore, durationMs: performance.now() - started });
    });
    socket.on("error", () => socket.destroy());
    const verdict = checkRequest(req, sites(), true, clientCerts.revokedSerials());
    if (verdict.kind === "deny") {
      logger.info("guard.denied", { status: verdict.status, host: req.headers.host ?? null, websocket: true, client: req.socket.remoteAddress ?? null });
      outcome.status = verdict.status;
      refuseUpgrade(socket, verdict.status, verdict.title);
      return;
    }
    siteName = verdict.site.hosts[0] ?? "";
    proxy.upgrade(req, socket, head, verdict.site, verdict.publicOrigin, outcome);
  });

  // Node closes a CONNECT without a word; say why, as nginx does (with a 400). Over HTTP/2 a
  // CONNECT is a stream with a response of its own (extended CONNECT, RFC 8441, is not offered).
  server.on("connect", (req: IncomingRequest, socket: Duplex | OutgoingResponse) => {
    const why = "CONNECT is not supported: this gateway serves notebooks, it is not a forward proxy";
    if ("writeHead" in socket) {
      // An HTTP/2 CONNECT is a request with a response: access log and metrics, as any other.
      const sent = requestAsSent(req);
      socket.once("close", () => onResponse(sent, socket.headersSent ? socket.statusCode : 499, "", (socket as CountingHttp2Response).bodyBytes));
      sendStatusPage(socket, 400, "Bad request", why, undefined);
    } else refuseUpgrade(socket, 400, why);
  });

  server.on("tlsClientError", (err, socket) => {
    logger.info("tls.handshake_failed", { client: socket.remoteAddress ?? null, error: err.message });
  });
  return server;
}

/**
 * How much of an upload a client may send ahead of the gateway's reading, per request (the
 * SETTINGS_INITIAL_WINDOW_SIZE) and per connection (RFC 9113 §6.9). HTTP/2's default of 64 KiB
 * for both would cap an upload at 64 KiB per round trip (about 1.3 MB/s at 50 ms), where HTTP/1.1
 * has the whole TCP window; 1 MiB per stream is Go's (Caddy's) default, and 4 MiB per connection
 * stays within Node's 10 MB per-session memory cap. Backpressure from the notebook still holds.
 */
const HTTP2_STREAM_WINDOW_BYTES = 1024 * 1024;
const HTTP2_CONNECTION_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * ALPN h2 and http/1.1 on one port (node:http2 with allowHTTP1): HTTP/1.1 connections get the
 * same timers and response class as the HTTP/1.1-only listener; HTTP/2 connections (sessions)
 * are closed after timeouts.client_idle without traffic, like a kept-alive HTTP/1.1 connection.
 * Extended CONNECT (RFC 8441, WebSockets over HTTP/2) is not advertised, so browsers open
 * WebSockets with an HTTP/1.1 upgrade on a connection of their own, which takes the same guard.
 */
function createHttp2Listener(tlsOptions: object, sni: SniContexts, timeouts: TimeoutsConfig, logger: Logger): HttpsListener {
  const server = createSecureServer({
    ...tlsOptions,
    ALPNCallback: sni.alpnCallback(["h2", "http/1.1"]),
    allowHTTP1: true,
    noDelay: true,
    Http1ServerResponse: CountingResponse,
    Http2ServerResponse: CountingHttp2Response,
    // Request headers get HTTP/1.1's limit (node:http's maxHeaderSize, 16 KiB); HTTP/2's default is 64 KiB.
    settings: { maxConcurrentStreams: LIMITS.http2StreamsPerConnection, enableConnectProtocol: false, initialWindowSize: HTTP2_STREAM_WINDOW_BYTES, maxHeaderListSize: maxHeaderSize },
  });
  // node:http2 takes the HTTP/1.1 timers as properties, not options (Node 20).
  Object.assign(server, { ...connectionTimers(timeouts), requestTimeout: 0 });
  const sessions = new Map<Http2Session, number>();
  const closeIfIdle = (session: Http2Session): void => {
    if (sessions.get(session) === 0 && !session.closed) session.close();
  };
  server.on("session", (session: Http2Session) => {
    session.setLocalWindowSize(HTTP2_CONNECTION_WINDOW_BYTES);
    sessions.set(session, 0);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream) => {
    const session = stream.session;
    if (!session) return;
    sessions.set(session, (sessions.get(session) ?? 0) + 1);
    stream.once("close", () => {
      if (!sessions.has(session)) return;
      sessions.set(session, (sessions.get(session) ?? 1) - 1);
      // Draining (the server stopped listening): each connection closes after its last answer.
      if (!server.listening) closeIfIdle(session);
    });
  });
  // A client that breaks the protocol: the session is already torn down (GOAWAY); say who it was.
  server.on("sessionError", (err: Error, session: Http2Session) => {
    logger.info("http2.session_error", { client: session.socket?.remoteAddress ?? null, error: err.message });
  });
  // With allowHTTP1, Node tracks HTTP/1.1 connections as an http.Server does, and closes them with its methods.
  const closeHttp1Idle = (): void => HttpServer.prototype.closeIdleConnections.call(server);
  const closeHttp1All = (): void => HttpServer.prototype.closeAllConnections.call(server);
  return Object.assign(server as unknown as HttpsListener, {
    /** Sends GOAWAY on every HTTP/2 connection with no request in flight (and closes idle HTTP/1.1 ones). */
    closeIdleConnections(): void {
      closeHttp1Idle();
      for (const session of sessions.keys()) closeIfIdle(session);
    },
    closeAllConnections(): void {
      closeHttp1All();
      for (const session of sessions.keys()) session.destroy();
    },
  });
}
