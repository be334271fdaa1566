import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { canonicalIPv6 } from "../config/address-range.js";
import { assertKeyFilePrivate } from "../platform/file-system.js";
import { GatewayError } from "../platform/gateway-error.js";

/** A leaf certificate with its chain and private key, ready to serve. */
export interface CertificateBundle {
  /** Leaf first, then intermediates (PEM). */
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DNS names and IP addresses (IPv6 canonical, as in SiteConfig.hosts) the leaf covers (subjectAltName). */
  readonly names: readonly string[];
  /** Issuer distinguished name of the leaf, for `gateway status`. */
  readonly issuer: string;
  /** SHA-256 fingerprint of the leaf, for logs and tests. */
  readonly fingerprint: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_KEY = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/;

/**
 * Parses and checks a certificate chain and key: both PEM, the key belongs to the leaf.
 * `source` names where they came from in the error (a file path or the store).
 */
export function parseBundle(certPem: string, keyPem: string, source: string): CertificateBundle {
  const certs = certPem.match(PEM_CERT);
  if (!certs || certs.length === 0) {
    throw new GatewayError("tls.bad_certificate", `${source}: no PEM certificate found; give the certificate chain file (fullchain.pem), not the key`);
  }
  const key = keyPem.match(PEM_KEY)?.[0];
  if (!key) {
    throw new GatewayError("tls.bad_key", `${source}: no unencrypted PEM private key found; give the key file (privkey.pem) without a passphrase`);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0] as string);
  } catch (cause) {
    throw new GatewayError("tls.bad_certificate", `${source}: the certificate cannot be parsed; replace it with a valid PEM file`, { cause });
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key));
  } catch (cause) {
    throw new GatewayError("tls.bad_key", `${source}: the private key cannot be parsed; give an unencrypted PEM key`, { cause });
  }
  if (!matches) {
    throw new GatewayError("tls.key_mismatch", `${source}: the private key does not belong to the certificate; give the key that was issued with it`);
  }
  return {
    certPem: `${certs.join("\n")}\n`,
    keyPem: `${key}\n`,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    names: (leaf.subjectAltName ?? "").split(", ").map(sanName).filter(Boolean),
    issuer: leaf.issuer.replace(/\n/g, ", "),
    fingerprint: leaf.fingerprint256,
  };
}

/**
 * A subjectAltName entry as site hosts are written: lower-case, an IPv6 address in its canonical
 * form (Node prints it uncompressed, 0:0:0:0:0:0:0:1, where gateway.yaml holds ::1).
 */
function sanName(entry: string): string {
  const name = entry.replace(/^(DNS|IP Address):/, "").toLowerCase();
  return isIP(name) === 6 ? canonicalIPv6(name) : name;
}

/** Reads a `tls: {cert, key}` pair as serve does: the key must not be readable by every user. */
export async function readCertificateFiles(certFile: string, keyFile: string): Promise<CertificateBundle> {
  await assertKeyFilePrivate(keyFile);
  const [certPem, keyPem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
  return parseBundle(certPem, keyPem, `${certFile} + ${keyFile}`);
}
