import { randomBytes } from "node:crypto";
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server } from "node:tls";
import type { CertificateBundle } from "./certificate-bundle.js";
import { TLS_PROFILE } from "./tls-profile.js";

/**
 * The certificate each public name is served with, swapped live: a new bundle affects only new
 * handshakes, so open connections (kernel WebSockets) stay up through a renewal.
 */
export class SniContexts {
  /** The name of the handshake that just offered acme-tls/1 (see ALPNCallback). */
  private acmeHandshake: string | undefined;
  private readonly contexts = new Map<string, SecureContext>();
  /** What each name's context was made from, to remake it with new session ticket keys. */
  private readonly options = new Map<string, SecureContextOptions>();
  /** Session ticket keys (RFC 5077), shared by every site's context and replaced by rotateTicketKeys(). */
  private ticketKeys: Buffer = randomBytes(48);
  private fallback: SecureContext | undefined;
  private fallbackOptions: SecureContextOptions | undefined;
  private readonly servers = new Set<Server>();

  /**
   * Serves `bundle` for `hosts`. With `isDefault` (config/site-table.ts defaultSite: an IP-address
   * site first, since clients send no SNI for an address), it also answers handshakes without SNI
   * or with an unknown name; until the default is set, the first site set does. `clientCa` (PEM)
   * verifies client certificates for sites that require them.
   */
  set(hosts: readonly string[], bundle: Pick<CertificateBundle, "certPem" | "keyPem">, isDefault: boolean, clientCa?: string): void {
    const options = { ...TLS_PROFILE, cert: bundle.certPem, key: bundle.keyPem, ...(clientCa ? { ca: clientCa } : {}) };
    const context = createSecureContext({ ...options, ticketKeys: this.ticketKeys });
    for (const host of hosts) {
      this.contexts.set(host, context);
      this.options.set(host, options);
    }
    if (isDefault || !this.fallback) {
      this.fallback = context;
      this.fallbackOptions = options;
      for (const server of this.servers) server.setSecureContext({ ...options, ticketKeys: this.ticketKeys });
    }
  }

  /** Forgets names no longer configured (after a reload). */
  retain(hosts: ReadonlySet<string>): void {
    for (const host of this.contexts.keys()) {
      if (hosts.has(host)) continue;
      this.contexts.delete(host);
      this.options.delete(host);
    }
  }

  has(host: string): boolean {
    return this.contexts.has(host);
  }

  /** Keeps `server`'s default context (used without SNI) in step with the default site. */
  attach(server: Server): void {
    this.servers.add(server);
    if (this.fallbackOptions) server.setSecureContext({ ...this.fallbackOptions, ticketKeys: this.ticketKeys });
  }

  /**
   * New session ticket keys for every context, so a stolen key decrypts at most one period of
   * resumed sessions (forward secrecy for resumption). Clients then do one full handshake.
   */
  rotateTicketKeys(): void {
    this.setTicketKeys(randomBytes(48));
  }

  /**
   * Serves with these 48 bytes of session ticket keys from now on. Workers get them from the
   * primary, so that a ticket one worker issued resumes on any other.
   */
  setTicketKeys(ticketKeys: Buffer): void {
    this.ticketKeys = ticketKeys;
    const remade = new Map<SecureContextOptions, SecureContext>();
    for (const [host, options] of this.options) {
      const context = remade.get(options) ?? createSecureContext({ ...options, ticketKeys: this.ticketKeys });
      remade.set(options, context);
      this.contexts.set(host, context);
      if (this.fallbackOptions === options) this.fallback = context;
    }
    if (this.fallbackOptions) for (const server of this.servers) server.setSecureContext({ ...this.fallbackOptions, ticketKeys: this.ticketKeys });
  }

  /**
   * @param alpnChallenge reads the TLS-ALPN-01 answer (key + certificate PEM) for a name, or null.
   */
  constructor(private readonly alpnChallenge: (name: string) => Promise<string | null> = async () => null) {}

  /**
   * ALPN for a listener that serves `served` (HTTP protocols, in the server's order of preference:
   * h2 before http/1.1, as nginx and Caddy pick), plus acme-tls/1 for a CA validating TLS-ALPN-01
   * (RFC 8737). In Node 20 this runs just before SNICallback within the same handshake (TLS 1.3,
   * which CAs use), so the name it records is the one SNICallback sees next. No protocol in
   * common: no ALPN (RFC 7301 §3.2 would alert; Node then serves HTTP/1.1, as to a client without ALPN).
   */
  alpnCallback(served: readonly string[]): (offer: { servername: string; protocols: string[] }) => string | undefined {
    return ({ servername, protocols }) => {
      this.acmeHandshake = protocols.includes("acme-tls/1") ? servername.toLowerCase() : undefined;
      if (this.acmeHandshake) return "acme-tls/1";
      return served.find((protocol) => protocols.includes(protocol));
    };
  }

  /** ALPN for an HTTP/1.1-only listener (and `gateway renew`'s TLS-ALPN-01 responder). */
  readonly ALPNCallback = this.alpnCallback(["http/1.1"]);

  readonly SNICallback = (servername: string, callback: (err: Error | null, ctx?: SecureContext) => void): void => {
    const name = servername.toLowerCase();
    if (this.acmeHandshake === name) {
      this.acmeHandshake = undefined;
      this.alpnChallenge(name).then(
        (pem) => (pem ? callback(null, createSecureContext({ ...TLS_PROFILE, cert: pem, key: pem })) : callback(new Error(`no TLS-ALPN-01 challenge pending for ${name}`))),
        (err: Error) => callback(err),
      );
      return;
    }
    callback(null, this.contexts.get(name) ?? this.fallback);
  };
}
