import { generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { pki } from "node-forge";
import type { CaKeyPair } from "./cert-store.js";

const generateRsa = promisify(generateKeyPair);
const DAY_MS = 24 * 3600 * 1000;
const CA_LIFETIME_MS = 10 * 365 * DAY_MS;
/** Backdating absorbs clock skew between the gateway and the client's machine. */
const BACKDATE_MS = 3600 * 1000;

/**
 * node-forge, loaded when a certificate is first made or packed (~11 MB resident): a gateway
 * serving ACME or file certificates never loads it. Node caches the module after the first call.
 */
export async function loadForge(): Promise<typeof import("node-forge")> {
  return (await import("node-forge")).default;
}

/** A new self-signed CA (10 years, may sign end-entity certificates only), with node-forge. */
export async function makeCaCertificate(commonName: string, now: Date): Promise<CaKeyPair> {
  const forge = await loadForge();
  const name = [
    { name: "commonName", value: `${commonName} ${randomBytes(4).toString("hex")}` },
    { name: "organizationName", value: "notebook-gateway" },
  ];
  const { certificate, keyPem } = await makeCertificate({
    subject: name,
    issuer: name,
    now,
    lifetimeMs: CA_LIFETIME_MS,
    extensions: [
      { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { certPem: forge.pki.certificateToPem(certificate), keyPem };
}

/** A certificate for `commonName` signed by `ca`, with a fresh RSA 2048 key. */
export async function signCertificate(ca: CaKeyPair, commonName: string, now: Date, lifetimeMs: number, extensions: object[]): Promise<{ certificate: pki.Certificate; certPem: string; keyPem: string }> {
  const forge = await loadForge();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const { certificate, keyPem } = await makeCertificate({
    subject: [{ name: "commonName", value: commonName }],
    issuer: caCert.subject.attributes,
    signingKey: forge.pki.privateKeyFromPem(ca.keyPem) as pki.rsa.PrivateKey,
    now,
    lifetimeMs,
    extensions,
  });
  return { certificate, certPem: forge.pki.certificateToPem(certificate), keyPem };
}

interface CertificateSpec {
  subject: pki.CertificateField[];
  issuer: pki.CertificateField[];
  /** Signs with this key; when absent the certificate signs itself (the CA). */
  signingKey?: pki.rsa.PrivateKey;
  now: Date;
  lifetimeMs: number;
  extensions: object[];
}

async function makeCertificate(spec: CertificateSpec): Promise<{ certificate: pki.Certificate; keyPem: string }> {
  // Node's native RSA generation: node-forge's pure-JS generator takes seconds.
  const { privateKey } = await generateRsa("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const forge = await loadForge();
  const key = forge.pki.privateKeyFromPem(privateKey) as pki.rsa.PrivateKey;
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

