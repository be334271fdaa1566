import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { GatewayError } from "../platform/gateway-error.js";

/** The local CA (storage/ca/root.crt) as `gateway trust` hands it to each trust store. */
export interface LocalCaCertificate {
  readonly path: string;
  readonly pem: string;
  /** SHA-256 of the DER, `AB:CD:…` as browsers show it: what identifies the CA in every store. */
  readonly fingerprint: string;
  /**
   * `notebook-gateway-<first 16 hex digits of the fingerprint>`: the file name in the system store
   * and the NSS nickname. From the fingerprint, so `untrust` removes exactly what `trust` added,
   * and the CAs of two gateways on one machine do not replace each other.
   */
  readonly trustName: string;
}

/** A place this machine's TLS clients take trusted CAs from. Failures are GatewayErrors. */
export interface TrustStore {
  /** What and where it is, e.g. "NSS database /home/me/.pki/nssdb (Chromium, Chrome)". */
  readonly description: string;
  /** Adds the CA unless it is there already; says what it did. */
  add(ca: LocalCaCertificate): Promise<string>;
  /** Removes what `add` added, if it is there; says what it did. */
  remove(ca: LocalCaCertificate): Promise<string>;
}

/** Reads the local CA's certificate; a missing or unreadable file is a GatewayError saying what to do. */
export async function loadLocalCa(path: string): Promise<LocalCaCertificate> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new GatewayError("trust.no_local_ca", `${path}: no local CA yet; gateway serve (or renew) makes it for the first site with tls: internal`, { cause: err });
    if (code === "EACCES") throw new GatewayError("trust.local_ca_unreadable", `${path}: permission denied; run as the user that owns the storage, or with sudo`, { cause: err });
    throw err;
  }
  const fingerprint = fingerprintOf(pem);
  return { path, pem, fingerprint, trustName: `notebook-gateway-${fingerprint.replace(/:/g, "").slice(0, 16).toLowerCase()}` };
}

/** SHA-256 fingerprint of a PEM certificate, `AB:CD:…`. */
export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
