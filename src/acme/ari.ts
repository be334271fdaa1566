import { X509Certificate } from "node:crypto";
import type { Dispatcher } from "undici";
import { request } from "undici";
import type { RenewalWindow } from "../tls/issuer.js";

/**
 * The ARI certificate identifier (RFC 9773 §4.1): base64url(authority key identifier) "."
 * base64url(serial number DER bytes). Also the value of `replaces` in a new order.
 */
export function ariCertId(certPem: string): string {
  const cert = new X509Certificate(certPem);
  const der = cert.raw;
  const aki = findAuthorityKeyId(der);
  if (!aki) throw new Error("the certificate has no authority key identifier; ARI cannot name it");
  let serial = Buffer.from(cert.serialNumber.length % 2 ? `0${cert.serialNumber}` : cert.serialNumber, "hex");
  if ((serial[0] ?? 0) & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]); // DER INTEGER stays positive
  return `${aki.toString("base64url")}.${serial.toString("base64url")}`;
}

/** One unauthenticated GET of `<renewalInfo>/<certID>`; honours Retry-After (default 6 h). */
export async function fetchRenewalWindow(renewalInfoUrl: string, certPem: string, now: Date, dispatcher?: Dispatcher): Promise<RenewalWindow> {
  const url = `${renewalInfoUrl.replace(/\/$/, "")}/${ariCertId(certPem)}`;
  const res = await request(url, { method: "GET", ...(dispatcher ? { dispatcher } : {}) });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`renewalInfo answered ${res.statusCode}: ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { suggestedWindow?: { start?: string; end?: string } };
  const start = new Date(body.suggestedWindow?.start ?? "");
  const end = new Date(body.suggestedWindow?.end ?? "");
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) throw new Error(`renewalInfo sent no valid suggestedWindow: ${text.slice(0, 200)}`);
  const retryAfterS = Number(res.headers["retry-after"]);
  const retryMs = Number.isFinite(retryAfterS) && retryAfterS > 0 ? Math.min(retryAfterS, 24 * 3600) * 1000 : 6 * 3600 * 1000;
  return { start, end, fetchAgainAfter: new Date(now.getTime() + retryMs) };
}

/**
 * Finds extension 2.5.29.35 (authorityKeyIdentifier) in a DER certificate and returns its
 * keyIdentifier. A small DER walk: Node exposes no parsed extensions and forge only reads RSA certificates.
 */
function findAuthorityKeyId(der: Buffer): Buffer | null {
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  const at = der.indexOf(oid);
  if (at < 0) return null;
  let i = at + oid.length;
  if (der[i] === 0x01) i += 3; // critical BOOLEAN
  if (der[i] !== 0x04) return null; // OCTET STRING wrapping the extension value
  i += headerLength(der, i);
  if (der[i] !== 0x30) return null; // AuthorityKeyIdentifier SEQUENCE
  i += headerLength(der, i);
  if (der[i] !== 0x80) return null; // [0] keyIdentifier
  const len = der[i + 1] ?? 0;
  return der.subarray(i + 2, i + 2 + len);
}

function headerLength(der: Buffer, i: number): number {
  const first = der[i + 1] ?? 0;
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}
