import type { OutgoingHttpHeaders } from "node:http";
import type { SiteConfig } from "../config/gateway-config.js";

/** HSTS max-age: one year, as testssl.sh and the HSTS preload list expect (RFC 6797 §6.1.1). */
const HSTS_MAX_AGE_S = 365 * 24 * 3600;

/**
 * Adds the gateway's security headers to a response's headers, in place. Framing is limited to
 * the site itself plus `frame_ancestors` (CSP frame-ancestors, merged into the notebook's own
 * CSP); without a list, X-Frame-Options also forbids framing for browsers without CSP.
 */
export function applySecurityHeaders(headers: OutgoingHttpHeaders | NodeJS.Dict<string | string[]>, site: SiteConfig | undefined): void {
  headers["strict-transport-security"] = `max-age=${HSTS_MAX_AGE_S}`;
  headers["x-content-type-options"] = "nosniff";
  headers["referrer-policy"] = "same-origin";
  const ancestors = ["'self'", ...(site?.frameAncestors ?? [])].join(" ");
  const upstreamCsp = String(headers["content-security-policy"] ?? "")
    .split(";")
    .map((d) => d.trim())
    .filter((d) => d !== "" && !d.toLowerCase().startsWith("frame-ancestors"));
  headers["content-security-policy"] = [`frame-ancestors ${ancestors}`, ...upstreamCsp].join("; ");
  if (site && site.frameAncestors.length > 0) delete headers["x-frame-options"];
  else headers["x-frame-options"] = "SAMEORIGIN";
}
