import { isIP } from "node:net";
import type { SiteConfig } from "./gateway-config.js";

/** Finds the site a request is for by its public name. */
export class SiteTable {
  private readonly byHost = new Map<string, SiteConfig>();
  /** Bounded: clients choose the port part of a Host header. */
  private readonly origins = new Map<string, string>();

  constructor(readonly sites: readonly SiteConfig[]) {
    for (const site of sites) for (const host of site.hosts) this.byHost.set(host, site);
  }

  /** The site for a Host header value ("name", "name:port", "[::1]:port"), or undefined. */
  lookup(hostHeader: string): SiteConfig | undefined {
    return this.byHost.get(hostnameOf(hostHeader));
  }

  /** The https origin a Host header names, normalised by `originOf`; computed once per value (a URL parse per request showed in profiles). */
  publicOrigin(hostHeader: string): string {
    let origin = this.origins.get(hostHeader);
    if (origin === undefined) {
      if (this.origins.size >= 256) this.origins.clear();
      origin = originOf(`https://${hostHeader}`);
      this.origins.set(hostHeader, origin);
    }
    return origin;
  }
}

/** The name in a Host header: lower-case, without port, brackets or a trailing dot. */
export function hostnameOf(hostHeader: string): string {
  const host = hostHeader.trim().toLowerCase();
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d*$/, "");
  return name.replace(/\.$/, "");
}

/** Normalised origin (scheme://host[:non-default port]); "null" and garbage map to "null". */
export function originOf(value: string): string {
  try {
    return new URL(value).origin;
  } catch {
    return "null";
  }
}

/**
 * The site whose certificate answers TLS handshakes that carry no server name, or one the gateway
 * does not serve: the first site with an IP address, since clients send no SNI for an address
 * (RFC 6066 §3); else the first site.
 */
export function defaultSite(sites: readonly SiteConfig[]): SiteConfig | undefined {
  return ipAddressSite(sites) ?? sites[0];
}

/** The first site with an IP address among its hosts: the one clients reach without SNI. */
export function ipAddressSite(sites: readonly SiteConfig[]): SiteConfig | undefined {
  return sites.find((site) => site.hosts.some((host) => isIP(host) !== 0));
}
