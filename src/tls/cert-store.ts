import { join } from "node:path";
import { ensurePrivateDir, readFileIfExists, writeFileAtomic } from "../platform/file-system.js";
import { parseBundle, type CertificateBundle } from "./certificate-bundle.js";

/** A CA certificate and its key, PEM. */
export interface CaKeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Certificates, keys and the local CA in the storage folder (0700). Each bundle is one file
 * (key, then chain; 0600) replaced by rename(2), so a reader never sees a key from one issuance
 * with a certificate from another, and a crash mid-write leaves the previous bundle intact.
 *
 *   certificates/<name>.pem   key + leaf + chain of a site
 *   ca/root.crt  ca/root.key  the local CA for `tls: internal` (trust root.crt on your devices)
 *   acme/challenges/<token>   HTTP-01 answers, shared by `serve` and `renew`
 */
export class FileCertStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await ensurePrivateDir(this.dir);
    await ensurePrivateDir(join(this.dir, "certificates"));
    await ensurePrivateDir(join(this.dir, "ca"));
    await ensurePrivateDir(this.challengeDir);
  }

  bundlePath(name: string): string {
    return join(this.dir, "certificates", `${name.replace(/[^a-z0-9.-]/gi, "_")}.pem`);
  }

  async load(name: string): Promise<CertificateBundle | null> {
    const path = this.bundlePath(name);
    const text = await readFileIfExists(path);
    return text === null ? null : parseBundle(text, text, path);
  }

  async save(name: string, bundle: CertificateBundle): Promise<void> {
    await writeFileAtomic(this.bundlePath(name), bundle.keyPem + bundle.certPem, 0o600);
  }

  get caCertPath(): string {
    return join(this.dir, "ca", "root.crt");
  }

  async loadCa(): Promise<CaKeyPair | null> {
    const keyPem = await readFileIfExists(join(this.dir, "ca", "root.key"));
    const certPem = await readFileIfExists(this.caCertPath);
    return keyPem && certPem ? { certPem, keyPem } : null;
  }

  /** Key first: a crash in between leaves no certificate, so the next start makes a fresh pair. */
  async saveCa(ca: CaKeyPair): Promise<void> {
    await writeFileAtomic(join(this.dir, "ca", "root.key"), ca.keyPem, 0o600);
    await writeFileAtomic(this.caCertPath, ca.certPem, 0o644);
  }

  get challengeDir(): string {
    return join(this.dir, "acme", "challenges");
  }

  /** The key authorization for an HTTP-01 token, or null (RFC 8555 §8.3: tokens are base64url). */
  async readChallenge(token: string): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(token)) return null;
    return readFileIfExists(join(this.challengeDir, token));
  }
}
