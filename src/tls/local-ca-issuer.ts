import { generateKeyPair, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import forge from "node-forge";
import type { Clock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import { parseBundle, type CertificateBundle } from "./certificate-bundle.js";
import type { CaKeyPair, FileCertStore } from "./cert-store.js";
import type { IssueRequest, Issuer, RenewalWindow } from "./issuer.js";

const generateRsa = promisify(generateKeyPair);
const DAY_MS = 24 * 3600 * 1000;

/** Lifetime of leaf certificates from the local CA: short, renewed by the usual policy (half-life). */
export const LOCAL_LEAF_LIFETIME_MS = 7 * DAY_MS;
const CA_LIFETIME_MS = 10 * 365 * DAY_MS;
/** Backdating absorbs clock skew between the gateway and the browser's machine. */
const BACKDATE_MS = 3600 * 1000;

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

  async obtain({ hosts }: IssueRequest): Promise<CertificateBundle> {
    const ca = await this.loadOrCreateCa();
    const caCert = forge.pki.certificateFromPem(ca.certPem);
    const caKey = forge.pki.privateKeyFromPem(ca.keyPem) as forge.pki.rsa.PrivateKey;
    const { certificate, keyPem } = await makeCertificate({
      subject: [{ name: "commonName", value: hosts[0] ?? "localhost" }],
      issuer: caCert.subject.attributes,
      signingKey: caKey,
      now: this.clock.now(),
      lifetimeMs: LOCAL_LEAF_LIFETIME_MS,
      extensions: [
        { name: "basicConstraints", cA: false, critical: true },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: true },
        { name: "subjectAltName", altNames: subjectAltNames(hosts) },
      ],
    });
    const certPem = forge.pki.certificateToPem(certificate) + ca.certPem;
    return parseBundle(certPem, keyPem, "local CA");
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
    const name = [
      { name: "commonName", value: `notebook-gateway local CA ${randomBytes(4).toString("hex")}` },
      { name: "organizationName", value: "notebook-gateway" },
    ];
    const { certificate, keyPem } = await makeCertificate({
      subject: name,
      issuer: name,
      now: this.clock.now(),
      lifetimeMs: CA_LIFETIME_MS,
      extensions: [
        { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    const ca = { certPem: forge.pki.certificateToPem(certificate), keyPem };
    await this.store.saveCa(ca);
    this.logger.info("tls.local_ca_created", { cert: this.store.caCertPath });
    return ca;
  }
}

interface CertificateSpec {
  subject: forge.pki.CertificateField[];
  issuer: forge.pki.CertificateField[];
  /** Signs with this key; when absent the certificate signs itself (the CA). */
  signingKey?: forge.pki.rsa.PrivateKey;
  now: Date;
  lifetimeMs: number;
  extensions: object[];
}

async function makeCertificate(spec: CertificateSpec): Promise<{ certificate: forge.pki.Certificate; keyPem: string }> {
  // Node's native RSA generation: node-forge's pure-JS generator takes seconds.
  const { privateKey } = await generateRsa("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // RFC 5280 §4.1.2.2: positive, at most 20 octets.
  certificate.serialNumber = `01${randomBytes(15).toString("hex")}`;
  certificate.validity.notBefore = new Date(spec.now.getTime() - BACKDATE_MS);
  certificate.validity.notAfter = new Date(spec.now.getTime() + spec.lifetimeMs);
  certificate.setSubject(spec.subject);
  certificate.setIssuer(spec.issuer);
  certificate.setExtensions([...spec.extensions, { name: "subjectKeyIdentifier" }]);
  certificate.sign(spec.signingKey ?? key, forge.md.sha256.create());
  return { certificate, keyPem: privateKey };
}

/** DNS names as dNSName (type 2), IP literals as iPAddress (type 7); localhost also covers 127.0.0.1 and ::1. */
function subjectAltNames(hosts: readonly string[]): object[] {
  const names = new Set(hosts);
  if (names.has("localhost")) ["127.0.0.1", "::1"].forEach((ip) => names.add(ip));
  return [...names].map((host) => (isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }));
}
