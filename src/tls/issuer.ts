import type { CertificateBundle } from "./certificate-bundle.js";

/** What to issue. */
export interface IssueRequest {
  /** Names for the certificate; the first is the common name. */
  readonly hosts: readonly string[];
  /** The certificate being renewed, if any (ACME sends it as `replaces`, RFC 9773 §5). */
  readonly replacing: CertificateBundle | null;
  /** The ACME profile the site's config asks for; null or absent: none (ACME then picks for IP addresses, see AcmeConfig.profile). */
  readonly profile?: string | null;
}

/** A CA's suggested renewal window for a certificate (RFC 9773 §4.2). */
export interface RenewalWindow {
  readonly start: Date;
  readonly end: Date;
  /** When to ask again (the response's Retry-After). */
  readonly fetchAgainAfter: Date;
}

/** A new certificate and which CA issued it ("local CA", or the ACME directory URL), for the renewal state and `gateway status`. */
export type IssuedBundle = CertificateBundle & { readonly issuedBy: string };

/** Where certificates come from: the local CA or an ACME CA. */
export interface Issuer {
  /** For logs and `gateway status`, e.g. "local CA" or the ACME directory URL. */
  readonly description: string;
  /** Obtains a certificate; throws with the real cause and writes nothing on failure. */
  obtain(request: IssueRequest): Promise<IssuedBundle>;
  /**
   * The CA's renewal window for `bundle`, or null when it offers none (then the lifetime policy
   * applies). `issuedBy`: the directory that issued it, as the renewal state records it, when known.
   */
  renewalWindow(bundle: CertificateBundle, issuedBy?: string | null): Promise<RenewalWindow | null>;
}
