import { createSecureContext, type SecureContext, type SecureContextOptions, type Server } from "node:tls";
import type { CertificateBundle } from "./certificate-bundle.js";
import { TLS_PROFILE } from "./tls-profile.js";

/**
 * The certificate each public name is served with, swapped live: a new bundle affects only new
 * handshakes, so open connections (kernel WebSockets) stay up through a renewal.
 */
export class SniContexts {
  private readonly contexts = new Map<string, SecureContext>();
  private fallback: SecureContext | undefined;
  private fallbackOptions: SecureContextOptions | undefined;
  private readonly servers = new Set<Server>();

  /** Serves `bundle` for `hosts`; the first site set also answers handshakes without SNI or with an unknown name. */
  set(hosts: readonly string[], bundle: CertificateBundle, isDefault: boolean): void {
    const options = { ...TLS_PROFILE, cert: bundle.certPem, key: bundle.keyPem };
    const context = createSecureContext(options);
    for (const host of hosts) this.contexts.set(host, context);
    if (isDefault || !this.fallback) {
      this.fallback = context;
      this.fallbackOptions = options;
      for (const server of this.servers) server.setSecureContext(options);
    }
  }

  /** Forgets names no longer configured (after a reload). */
  retain(hosts: ReadonlySet<string>): void {
    for (const host of this.contexts.keys()) if (!hosts.has(host)) this.contexts.delete(host);
  }

  has(host: string): boolean {
    return this.contexts.has(host);
  }

  /** Keeps `server`'s default context (used without SNI) in step with the default site. */
  attach(server: Server): void {
    this.servers.add(server);
    if (this.fallbackOptions) server.setSecureContext(this.fallbackOptions);
  }

  readonly SNICallback = (servername: string, callback: (err: Error | null, ctx?: SecureContext) => void): void => {
    callback(null, this.contexts.get(servername.toLowerCase()) ?? this.fallback);
  };
}
