import type { IncomingHttpHeaders } from "node:http";

/** What the header rewriting needs to know about one request. */
export interface Presentation {
  /** The site as the browser sees it, e.g. https://jupyter.example.com. */
  readonly publicOrigin: string;
  /** The notebook's own origin, e.g. http://127.0.0.1:8888. */
  readonly upstream: URL;
  /** The TCP peer address of the client. */
  readonly clientAddress: string;
}

/** Headers a client may not set: the gateway sets its own (PRODUCT.md: never passed through). */
const CLIENT_FORWARDING_HEADERS = ["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip"];

/**
 * Rewrites request headers, in place, so the notebook sees a same-site request to its loopback
 * address and needs no config change: Jupyter refuses a non-local Host, and compares Origin and
 * Referer with Host. Only headers already checked to be same-site (the guard ran first) are
 * rewritten; a foreign Origin or Referer passes unchanged, so the notebook refuses it too.
 */
export function presentToNotebook(headers: IncomingHttpHeaders, p: Presentation): void {
  const publicHost = headers.host ?? "";
  for (const name of CLIENT_FORWARDING_HEADERS) delete headers[name];
  headers.host = p.upstream.host;
  if (headers.origin !== undefined && sameOrigin(headers.origin, p.publicOrigin)) headers.origin = p.upstream.origin;
  const referer = headers.referer;
  if (referer !== undefined && sameOrigin(referer, p.publicOrigin)) {
    const url = new URL(referer);
    headers.referer = `${p.upstream.origin}${url.pathname}${url.search}`;
  }
  headers["x-forwarded-for"] = p.clientAddress;
  headers["x-forwarded-proto"] = "https";
  headers["x-forwarded-host"] = publicHost;
}

/**
 * Rewrites response headers, in place, back to the public site: absolute redirects to the
 * notebook's address point at the site, and cookies get `Secure` since the site is HTTPS-only.
 */
export function presentToBrowser(headers: IncomingHttpHeaders, p: Presentation): void {
  const location = headers.location;
  if (location !== undefined && sameOrigin(location, p.upstream.origin)) {
    const url = new URL(location);
    headers.location = `${p.publicOrigin}${url.pathname}${url.search}${url.hash}`;
  }
  const cookies = headers["set-cookie"];
  if (cookies) headers["set-cookie"] = cookies.map((c) => (/;\s*secure\s*(;|$)/i.test(c) ? c : `${c}; Secure`));
}

function sameOrigin(url: string, origin: string): boolean {
  try {
    return new URL(url).origin === new URL(origin).origin;
  } catch {
    return false;
  }
}
