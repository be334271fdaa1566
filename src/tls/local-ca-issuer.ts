import { isIP } from "node:net";
import type { Clock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import { parseBundle } from "./certificate-bundle.js";
import type { CaKeyPair, FileCertStore } from "./cert-store.js";
import { makeCaCertificate, signCertificate } from "./forge-certificates.js";
import type { IssuedBundle, IssueRequest, Issuer, RenewalWindow } from "./issuer.js";

const DAY_MS = 24 * 3600 * 1000;

/** Lifetime of leaf certificates from the local CA: short, renewed by the usual policy (half-life). */
export const LOCAL_LEAF_LIFETIME_MS = 7 * DAY_MS;

/**
 * `tls: internal`: a CA kept in storage (made once, 10 years) issues short-lived leaf
 * certificates for local names, like Caddy's `tls internal`. Users trust storage/ca/root.crt.
 */
export class LocalCaIssuer implements Issuer {
  readonly description = "local CA";
  private ca: CaKeyPair | undefined;

  constructor(
    private readonly store: FileCertStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  async obtain({ hosts }: IssueRequest): Promise<IssuedBundle> {
    const ca = await this.loadOrCreateCa();
    const { certPem, keyPem } = await signCertificate(ca, hosts[0] ?? "localhost", this.clock.now(), LOCAL_LEAF_LIFETIME_MS, [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: subjectAltNames(hosts) },
    ]);
    return { ...parseBundle(certPem + ca.certPem, keyPem, "local CA"), issuedBy: this.description };
  }

  /** The local CA offers no renewal window: the lifetime policy (half-life) applies. */
  async renewalWindow(): Promise<RenewalWindow | null> {
    return null;
  }

  private async loadOrCreateCa(): Promise<CaKeyPair> {
    this.ca ??= (await this.store.loadCa()) ?? (await this.createCa());
    return this.ca;
  }

  private async createCa(): Promise<CaKeyPair> {
    const ca = await makeCaCertificate("notebook-gateway local CA", this.clock.now());
    await this.store.saveCa(ca);
    this.logger.info("tls.local_ca_created", { cert: this.store.caCertPath });
    return ca;
  }
}

/** DNS names as dNSName (type 2), IP literals as iPAddress (type 7); localhost also covers 127.0.0.1 and ::1. */
function subjectAltNames(hosts: readonly string[]): object[] {
  const names = new Set(hosts);
  if (names.has("localhost")) ["127.0.0.1", "::1"].forEach((ip) => names.add(ip));
  return [...names].map((host) => (isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }));
}
