import { createServer, type Server } from "node:https";
import type { Duplex } from "node:stream";
import { LIMITS, type TimeoutsConfig } from "../config/gateway-config.js";
import type { SiteTable } from "../config/site-table.js";
import { checkRequest } from "../guard/request-guard.js";
import type { LoginGate, LoginLockout } from "../guard/login-throttle.js";
import type { NotebookProxy, UpgradeOutcome } from "../proxy/notebook-proxy.js";
import { refuseUpgrade, sendStatusPage } from "../proxy/status-page.js";
import type { Logger } from "../platform/logger.js";
import type { SniContexts } from "../tls/sni-context.js";
import { TLS_PROFILE } from "../tls/tls-profile.js";
import { CountingResponse, requestAsSent, type RequestAsSent, type WebSocketSession } from "./access-log.js";
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
  /**
   * Called when a response has been sent, and when a WebSocket closes (with `session`): metrics,
   * access log. `site` is the site's first name, "" when the guard refused the request.
   */
  readonly onResponse: (request: RequestAsSent, status: number, site: string, bodyBytes: number, session?: WebSocketSession) => void;
  readonly logger: Logger;
}

export function createHttpsListener({ sni, sites, proxy, logins, clientCerts, upgraded, timeouts, onResponse, logger }: HttpsListenerDeps): Server {
  const server = createServer({
    ...TLS_PROFILE,
    SNICallback: sni.SNICallback,
    ALPNCallback: sni.ALPNCallback,
    // No deadline for a whole request (uploads of any size); slow headers are cut (slowloris).
    ServerResponse: CountingResponse,
    ...connectionTimers(timeouts),
    requestTimeout: 0,
    // A TLS handshake gets as long as request headers do (Node's default: 120 s).
    handshakeTimeout: timeouts.headersMs,
    // Only when a site requires client certificates: ask for one, but let the handshake finish
    // without it (the server side of optional client auth; the guard then requires an authorized,
    // unrevoked certificate per request and answers a page that says what to install).
    ...(clientCerts.requested ? { requestCert: true, rejectUnauthorized: false } : {}),
  });
  /** Responses not yet closed per connection: an upgrade must not overtake one (pipelining). */
  const openResponses = new WeakMap<object, number>();
  guardConnections(server, LIMITS.clientConnections, LIMITS.clientConnectionsPerAddress, "listen.https", logger);
  sni.attach(server);

  server.on("request", (req, res) => {
    const sent = requestAsSent(req);
    const verdict = checkRequest(req, sites(), false, clientCerts.revokedSerials());
    const socket = req.socket;
    openResponses.set(socket, (openResponses.get(socket) ?? 0) + 1);
    res.once("finish", () => {
      // Answered before the whole upload arrived (a refusal, a failure page after the notebook's
      // connection broke): read and drop the rest, as nginx does, or the client's next request
      // on this kept-alive connection waits behind it forever. (After the notebook's own early
      // answer the proxy closes the connection instead.)
      if (!req.complete) req.unpipe().resume();
    });
    // Finished or cut short: either way one line. A client gone before any answer is nginx's 499.
    res.once("close", () => {
      openResponses.set(socket, (openResponses.get(socket) ?? 1) - 1);
      const bodyBytes = req.method === "HEAD" ? 0 : (res as CountingResponse).bodyBytes;
      onResponse(sent, res.headersSent ? res.statusCode : 499, verdict.kind === "allow" ? (verdict.site.hosts[0] ?? "") : "", bodyBytes);
    });
    if (verdict.kind === "deny") {
      logger.info("guard.denied", { status: verdict.status, host: req.headers.host ?? null, method: req.method ?? null, client: req.socket.remoteAddress ?? null });
      sendStatusPage(res, verdict.status, verdict.title, verdict.hint, undefined);
      return;
    }
    const client = req.socket.remoteAddress ?? "";
    if (!logins.isLoginAttempt(verdict.site, req.method, req.url)) {
      proxy.web(req, res, verdict.site, verdict.publicOrigin);
      return;
    }
    const admit = (lockout: LoginLockout | null): void => {
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
    if (lockout instanceof Promise) void lockout.then(admit);
    else admit(lockout);
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

  // Node closes a CONNECT without a word; say why, as nginx does (with a 400).
  server.on("connect", (_req, socket: Duplex) => refuseUpgrade(socket, 400, "CONNECT is not supported: this gateway serves notebooks, it is not a forward proxy"));

  server.on("tlsClientError", (err, socket) => {
    logger.info("tls.handshake_failed", { client: socket.remoteAddress ?? null, error: err.message });
  });
  return server;
}
