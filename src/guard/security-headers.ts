import type { OutgoingHttpHeaders } from "node:http";
import type { SiteConfig } from "../config/gateway-config.js";

/** HSTS max-age: one year, as testssl.sh and the HSTS preload list expect (RFC 6797 §6.1.1). */
const HSTS = `max-age=${365 * 24 * 3600}`;

const SELF_ONLY = "frame-ancestors 'self'";

/** The CSP frame-ancestors directive: a constant for the default (no frame_ancestors). */
function frameAncestorsOf(site: SiteConfig | undefined): string {
  return !site || site.frameAncestors.length === 0 ? SELF_ONLY : `${SELF_ONLY} ${site.frameAncestors.join(" ")}`;
}

/**
 * Adds the gateway's security headers to a response's headers, in place. Framing is limited to
 * the site itself plus `frame_ancestors` (CSP frame-ancestors, merged into the notebook's own
 * CSP); without a list, X-Frame-Options also forbids framing for browsers without CSP.
 */
export function applySecurityHeaders(headers: OutgoingHttpHeaders | NodeJS.Dict<string | string[]>, site: SiteConfig | undefined): void {
  headers["strict-transport-security"] = HSTS;
  headers["x-content-type-options"] = "nosniff";
  headers["referrer-policy"] = "same-origin";
  const frameAncestors = frameAncestorsOf(site);
  const notebookCsp = headers["content-security-policy"];
  headers["content-security-policy"] =
    notebookCsp === undefined
      ? frameAncestors
      : [
          frameAncestors,
          ...String(notebookCsp)
            .split(";")
            .map((d) => d.trim())
            .filter((d) => d !== "" && !d.toLowerCase().startsWith("frame-ancestors")),
        ].join("; ");
  if (site && site.frameAncestors.length > 0) delete headers["x-frame-options"];
  else headers["x-frame-options"] = "SAMEORIGIN";
}
