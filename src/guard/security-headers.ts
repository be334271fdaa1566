import type { OutgoingHttpHeaders } from "node:http";
import type { SiteConfig } from "../config/gateway-config.js";

/** HSTS max-age: one year, as testssl.sh and the HSTS preload list expect (RFC 6797 §6.1.1). */
const HSTS = `max-age=${365 * 24 * 3600}`;

/** The CSP frame-ancestors directive per site, built once (it was rebuilt for every response). */
const FRAME_ANCESTORS = new WeakMap<SiteConfig, string>();
const SELF_ONLY = "frame-ancestors 'self'";

function frameAncestorsOf(site: SiteConfig | undefined): string {
  if (!site || site.frameAncestors.length === 0) return SELF_ONLY;
  let directive = FRAME_ANCESTORS.get(site);
  if (directive === undefined) {
    directive = `${SELF_ONLY} ${site.frameAncestors.join(" ")}`;
    FRAME_ANCESTORS.set(site, directive);
  }
  return directive;
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
