import { request, type Dispatcher } from "undici";
import { describeProfileNotOffered, offeredProfiles } from "../acme/acme-profile.js";
import { UNTRUSTED_CERTIFICATE_CODES } from "../platform/untrusted-certificate.js";
import type { Finding } from "./finding.js";

/** A profile the config asks for: its name, the setting ("acme.profile", "acme_profile") and where it is ("gateway.yaml:4:12: "). */
export interface RequestedProfile {
  readonly profile: string;
  readonly setting: string;
  readonly at: string;
}

/**
 * Whether the ACME directory answers a GET within `timeoutMs` with JSON naming newOrder
 * (RFC 8555 §7.1.1), as the issuer's first request will need, and lists every profile in
 * `profiles` in meta.profiles, as each order will need (a problem per one it does not).
 * `setting` is where it is written: acme.directory, or acme.fallback for a fallback CA's.
 */
export async function checkAcmeDirectory(url: URL, at: string, timeoutMs: number, dispatcher?: Dispatcher, profiles: readonly RequestedProfile[] = [], setting: "acme.directory" | "acme.fallback" = "acme.directory"): Promise<Finding[]> {
  const role = setting === "acme.fallback" ? "fallback " : "";
  const answer = await checkDirectoryAnswers(url, `${at}${role}`, timeoutMs, setting, dispatcher);
  if (!("directory" in answer)) return [answer];
  const offered = offeredProfiles(answer.directory);
  const missing = profiles.filter((p) => !offered.includes(p.profile));
  return [
    { level: "ok", text: `${role}ACME directory ${url.href} answers${offered.length > 0 ? ` (profiles: ${offered.join(", ")})` : ""}` },
    ...missing.map((p): Finding => ({ level: "problem", text: `${p.at}${p.setting}: ${describeProfileNotOffered(p.profile, offered, url.href)}` })),
  ];
}

async function checkDirectoryAnswers(url: URL, at: string, timeoutMs: number, setting: "acme.directory" | "acme.fallback", dispatcher?: Dispatcher): Promise<Finding | { directory: unknown }> {
  const subject = `${at}ACME directory ${url.href}`;
  try {
    const res = await request(url, { method: "GET", signal: AbortSignal.timeout(timeoutMs), ...(dispatcher ? { dispatcher } : {}) });
    const body = await res.body.text();
    let directory: unknown;
    try {
      directory = JSON.parse(body);
    } catch {
      directory = null;
    }
    if (res.statusCode === 200 && typeof (directory as { newOrder?: unknown } | null)?.newOrder === "string") return { directory };
    return { level: "problem", text: `${subject} answers HTTP ${res.statusCode} without a newOrder URL: not an ACME directory; fix ${setting === "acme.fallback" ? "this fallback's directory (the CA's …/directory URL)" : "acme.directory (e.g. letsencrypt, or the CA's …/directory URL)"}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    if ((err as Error).name === "TimeoutError" || (err as Error).name === "AbortError") {
      return { level: "problem", text: `${subject} did not answer within ${timeoutMs / 1000} s; check the URL and this server's outbound HTTPS (firewall, proxy)` };
    }
    if (code && UNTRUSTED_CERTIFICATE_CODES.has(code)) {
      return { level: "problem", text: `${subject}: its certificate is not trusted here (${code}); for a private CA, give its root to the gateway: NODE_EXTRA_CA_CERTS=/path/to/ca.pem in serve's and renew's environment (Environment= in the systemd unit)` };
    }
    return { level: "problem", text: `${subject} cannot be reached (${code ?? (err as Error).message}); check the URL and this server's outbound HTTPS` };
  }
}
