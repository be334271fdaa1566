import type { TLSSocket } from "node:tls";
import type { SiteConfig } from "../config/gateway-config.js";
import { originOf, type SiteTable } from "../config/site-table.js";
import { isAddressPermitted } from "./address-rules.js";
import type { IncomingRequest } from "./incoming-request.js";
import { normaliseRequest } from "./request-hygiene.js";

/** The one decision every request and every WebSocket upgrade goes through. */
export type GuardVerdict =
  | { readonly kind: "allow"; readonly site: SiteConfig; readonly publicOrigin: string }
  | { readonly kind: "deny"; readonly status: number; readonly title: string; readonly hint: string };

/** Methods that cannot change state (RFC 9110 §9.2.1); anything else must come from the site itself. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Decides whether a request may reach a notebook: it must be unambiguous (request-hygiene.ts,
 * which also rewrites an absolute-form target to origin-form), the Host must be a configured site, the client
 * address must pass the site's allow/deny lists, a site that requires client certificates must
 * get a valid, unrevoked one, and an
 * upgrade or state-changing request that carries an Origin must come from that same site.
 * Without this the notebook would see only the rewritten, loopback Origin and could not refuse
 * cross-site requests itself (CSWSH: a foreign page opening a kernel WebSocket with the user's cookies).
 */
export function checkRequest(req: IncomingRequest, sites: SiteTable, isUpgrade: boolean, revokedSerials: ReadonlySet<string> = new Set()): GuardVerdict {
  const malformed = normaliseRequest(req);
  if (malformed) return { kind: "deny", ...malformed };
  const host = req.headers.host;
  if (!host) return deny(400, "Bad request", "The request has no Host header.");
  const site = sites.lookup(host);
  if (!site) return deny(421, "Unknown site", "This gateway does not serve that name. Check the address, or add the name to a site's hosts in gateway.yaml.");
  if (!isAddressPermitted(site, req.socket?.remoteAddress ?? "")) {
    return deny(403, "Address not allowed", "Your network address may not reach this notebook. If it should, add it to the site's allow list in gateway.yaml.");
  }
  if (site.clientCertificatesRequired) {
    const socket = req.socket as TLSSocket;
    const serial = socket.authorized ? socket.getPeerCertificate().serialNumber : undefined;
    if (!serial) return deny(403, "Client certificate required", "This notebook asks for a client certificate as a second factor, and this browser sent none that the gateway issued. Install the .p12 file that `gateway client-cert add NAME` made for this device (import it with the password it printed), then restart the browser.");
    if (revokedSerials.has(serial)) return deny(403, "Client certificate revoked", "The client certificate this browser sent was revoked. Ask the notebook's owner for a new one (gateway client-cert add NAME) and remove the old one from this device.");
  }
  const publicOrigin = sites.publicOrigin(host);
  if (isUpgrade && (req.method !== "GET" || req.headers.upgrade?.toLowerCase() !== "websocket")) {
    return deny(400, "Bad request", "Only WebSocket upgrades (GET with Upgrade: websocket) are accepted.");
  }
  // The bytes after an upgrade's head are WebSocket frames: a body announced as well would be read twice.
  if (isUpgrade && (req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] ?? "0") !== "0")) {
    return deny(400, "Bad request", "A WebSocket upgrade cannot carry a request body.");
  }
  const origin = req.headers.origin;
  if ((isUpgrade || !SAFE_METHODS.has(req.method ?? "GET")) && origin !== undefined && originOf(origin) !== publicOrigin) {
    return deny(403, "Cross-site request refused", `Requests that change state must come from ${publicOrigin} itself.`);
  }
  return { kind: "allow", site, publicOrigin };
}

function deny(status: number, title: string, hint: string): GuardVerdict {
  return { kind: "deny", status, title, hint };
}
