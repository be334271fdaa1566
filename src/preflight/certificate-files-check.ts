import type { SiteConfig } from "../config/gateway-config.js";
import { describeError } from "../platform/logger.js";
import { readCertificateFiles } from "../tls/certificate-bundle.js";
import type { Finding } from "./finding.js";

/** A certificate this close to its end is still served, with a warning. */
const EXPIRY_WARNING_MS = 7 * 86_400_000;

/**
 * Reads a site's `tls: {cert, key}` as serve does (the key must not be readable by every user),
 * and checks that the certificate is valid now and covers every name of the site.
 */
export async function checkCertificateFiles(site: SiteConfig, certFile: string, keyFile: string, now: Date): Promise<Finding> {
  const at = `${site.position}: `;
  let bundle;
  try {
    bundle = await readCertificateFiles(certFile, keyFile);
  } catch (err) {
    return { level: "problem", text: `${at}${describeError(err)}` };
  }
  if (bundle.notAfter <= now) {
    return { level: "problem", text: `${at}${certFile} expired on ${bundle.notAfter.toISOString()}; renew it (e.g. certbot renew) or point tls.cert and tls.key at the current files` };
  }
  if (bundle.notBefore > now) {
    return { level: "problem", text: `${at}${certFile} is not valid before ${bundle.notBefore.toISOString()}; check this server's clock (timedatectl) or the file` };
  }
  const missing = site.hosts.filter((host) => !bundle.names.some((name) => covers(name, host)));
  if (missing.length > 0) {
    return { level: "problem", text: `${at}${certFile} does not cover ${missing.join(", ")} (it covers ${bundle.names.join(", ") || "no name"}); browsers refuse those names: get a certificate that covers them, or remove them from hosts:` };
  }
  const days = Math.floor((bundle.notAfter.getTime() - now.getTime()) / 86_400_000);
  if (bundle.notAfter.getTime() - now.getTime() < EXPIRY_WARNING_MS) {
    return { level: "warning", text: `${at}${certFile} expires in ${days} day(s), on ${bundle.notAfter.toISOString()}; renew it (the gateway reloads the files when they change)` };
  }
  return { level: "ok", text: `${certFile}: valid until ${bundle.notAfter.toISOString()}, covers ${site.hosts.join(", ")}` };
}

/** A SAN entry covers a name exactly, or as a wildcard for one leftmost label (RFC 6125 §6.4.3). */
function covers(name: string, host: string): boolean {
  if (name === host) return true;
  return name.startsWith("*.") && host.slice(host.indexOf(".") + 1) === name.slice(2) && host.indexOf(".") > 0;
}
