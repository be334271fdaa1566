import { randomBytes, X509Certificate } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Clock } from "../platform/clock.js";
import { ensurePrivateDir, readFileIfExists, writeFileAtomic } from "../platform/file-system.js";
import { GatewayError } from "../platform/gateway-error.js";
import type { CaKeyPair } from "./cert-store.js";
import { loadForge, makeCaCertificate, signCertificate } from "./forge-certificates.js";

/** Client certificates live a year; revoke one with `gateway client-cert revoke NAME`. */
const CLIENT_LIFETIME_MS = 365 * 24 * 3600 * 1000;

/** What `gateway client-cert add` made. */
export interface IssuedClientCertificate {
  readonly p12Path: string;
  /** Protects the .p12; shown once, needed to import it. */
  readonly password: string;
  readonly serial: string;
  readonly notAfter: Date;
}

/**
 * Client certificates (mutual TLS) as a second factor: a per-storage client CA issues one
 * certificate per device, delivered as a password-protected PKCS#12 file that browsers and iPads
 * import. Revoked serials are kept in revoked.json, which a running gateway re-reads.
 *
 *   clients/ca.crt  clients/ca.key   the client CA
 *   clients/NAME.p12 clients/NAME.crt one per device
 *   clients/revoked.json             { NAME: serial }
 */
export class ClientCa {
  constructor(
    readonly dir: string,
    private readonly clock: Clock,
  ) {}

  get revokedPath(): string {
    return join(this.dir, "revoked.json");
  }

  /** The client CA certificate (PEM), made on first use. */
  async caCertPem(): Promise<string> {
    return (await this.loadOrCreateCa()).certPem;
  }

  async add(name: string): Promise<IssuedClientCertificate> {
    checkName(name);
    const ca = await this.loadOrCreateCa();
    if (await readFileIfExists(join(this.dir, `${name}.crt`))) {
      throw new GatewayError("client_cert.exists", `a client certificate named ${name} exists already; revoke it first (gateway client-cert revoke ${name}) or pick another name`);
    }
    const { certificate, certPem, keyPem } = await signCertificate(ca, name, this.clock.now(), CLIENT_LIFETIME_MS, [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", clientAuth: true },
    ]);
    const password = randomBytes(12).toString("base64url");
    const forge = await loadForge();
    // 3DES/SHA-1 PKCS#12: the variant iOS, macOS and Windows all import.
    const p12 = forge.pkcs12.toPkcs12Asn1(forge.pki.privateKeyFromPem(keyPem), [certificate, forge.pki.certificateFromPem(ca.certPem)], password, { algorithm: "3des", friendlyName: name });
    const p12Path = join(this.dir, `${name}.p12`);
    await writeFileAtomic(p12Path, Buffer.from(forge.asn1.toDer(p12).getBytes(), "binary"), 0o600);
    await writeFileAtomic(join(this.dir, `${name}.crt`), certPem, 0o644);
    const x509 = new X509Certificate(certPem);
    return { p12Path, password, serial: x509.serialNumber, notAfter: new Date(x509.validTo) };
  }

  /** Revokes NAME's certificate: a running gateway refuses it within seconds. */
  async revoke(name: string): Promise<string> {
    checkName(name);
    const certPem = await readFileIfExists(join(this.dir, `${name}.crt`));
    if (!certPem) throw new GatewayError("client_cert.unknown", `there is no client certificate named ${name} in ${this.dir}; gateway client-cert add ${name} makes one`);
    const serial = new X509Certificate(certPem).serialNumber;
    const revoked = await this.revoked();
    await writeFileAtomic(this.revokedPath, `${JSON.stringify({ ...revoked, [`${name}@${serial}`]: serial }, null, 2)}\n`, 0o644);
    await rm(join(this.dir, `${name}.crt`), { force: true });
    await rm(join(this.dir, `${name}.p12`), { force: true });
    return serial;
  }

  /** Serials that must be refused. */
  async revokedSerials(): Promise<Set<string>> {
    return new Set(Object.values(await this.revoked()));
  }

  private async revoked(): Promise<Record<string, string>> {
    const text = await readFileIfExists(this.revokedPath);
    return text ? (JSON.parse(text) as Record<string, string>) : {};
  }

  private async loadOrCreateCa(): Promise<CaKeyPair> {
    const keyPem = await readFileIfExists(join(this.dir, "ca.key"));
    const certPem = await readFileIfExists(join(this.dir, "ca.crt"));
    if (keyPem && certPem) return { certPem, keyPem };
    await ensurePrivateDir(this.dir);
    const ca = await makeCaCertificate("notebook-gateway client CA", this.clock.now());
    await writeFileAtomic(join(this.dir, "ca.key"), ca.keyPem, 0o600);
    await writeFileAtomic(join(this.dir, "ca.crt"), ca.certPem, 0o644);
    return ca;
  }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw new GatewayError("client_cert.bad_name", `client certificate names are letters, digits, dots, dashes and underscores (got "${name}"); e.g. alice-ipad`);
  }
}
