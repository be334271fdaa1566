import type { Dispatcher } from "undici";
import { request } from "undici";
import type { GatewayConfig, TunnelConfig } from "../config/gateway-config.js";
import { findAccessLogProblem } from "../server/access-log.js";
import { findStorageProblem } from "../tls/cert-store.js";
import { checkAcmeDirectory, type RequestedProfile } from "./acme-directory-check.js";
import { checkCertificateFiles } from "./certificate-files-check.js";
import { checkDnsPointsHere, lookupHost, type ResolveHost } from "./dns-check.js";
import { checkDnsUpdates } from "./dns-update-check.js";
import { at, type Finding } from "./finding.js";
import { checkPort, checkTunnelPort, type OwnServe } from "./port-check.js";
import { checkSshLogin } from "./ssh-check.js";
import { checkUpstream } from "./upstream-check.js";

/** What the preflight reaches out through; the system's by default, a test's DNS server in tests. */
export interface PreflightDeps {
  readonly resolveHost: ResolveHost;
  /** For the ACME directory; undefined: undici's global one (system CAs and NODE_EXTRA_CA_CERTS). */
  readonly dispatcher?: Dispatcher;
  readonly sshPath: string;
  readonly now: () => Date;
}

export function systemPreflightDeps(): PreflightDeps {
  return { resolveHost: lookupHost, sshPath: "ssh", now: () => new Date() };
}

/**
 * Network checks get this long each; they run side by side, so check takes about the longest
 * (ssh's login, usually well under a second).
 */
export const PREFLIGHT_TIMEOUTS_MS = { dns: 3_000, acmeDirectory: 5_000, ssh: 8_000, upstream: 3_000, admin: 1_000 } as const;

/**
 * Everything serve will need from this machine, checked without changing anything: storage and
 * the access log writable, the ports bindable, each ACME name pointing here (for dns-01: the DNS
 * server taking signed updates for its zone) and the CA answering,
 * certificate files valid, each tunnel's port free and its ssh login working, each notebook
 * answering with a password. Findings come in a fixed order whatever finishes first.
 */
export async function runPreflight(config: GatewayConfig, deps: PreflightDeps): Promise<Finding[]> {
  const own: OwnServe = { configFile: config.file, adminAnswers: once(() => adminAnswersFor(config)) };
  const ports = [
    { address: config.listen.address, port: config.listen.httpsPort, key: "listen.https", at: at(config.positions["listen.https"], config.file) },
    ...(config.listen.httpPort === null ? [] : [{ address: config.listen.address, port: config.listen.httpPort, key: "listen.http", at: at(config.positions["listen.http"], config.file) }]),
    ...(config.admin ? [{ address: config.admin.host, port: config.admin.port, key: "admin", at: at(config.positions.admin, config.file) }] : []),
  ];
  const acmeSites = config.sites.filter((s) => s.tls.kind === "acme");
  const checks: Array<Promise<Finding | Finding[]>> = [
    findStorageProblem(config.storageDir).then((p) => (p ? { level: "problem", text: p.message } : { level: "ok", text: `storage ${config.storageDir} is usable` })),
    ...(config.logs.access ? [logCheck(config.logs.access)] : []),
    ...ports.map((use) => checkPort(use, own)),
    ...(acmeSites.length > 0 ? [checkAcmeDirectory(config.acme.directoryUrl, at(config.positions["acme.directory"], config.file), PREFLIGHT_TIMEOUTS_MS.acmeDirectory, deps.dispatcher, requestedProfiles(config))] : []),
    ...(acmeSites.length > 0 ? config.acme.fallbacks.map((ca) => checkAcmeDirectory(ca.directoryUrl, at(ca.position, config.file), PREFLIGHT_TIMEOUTS_MS.acmeDirectory, deps.dispatcher, requestedProfiles(config), "acme.fallback")) : []),
    // dns-01 needs no address pointing here (the CA asks DNS, not this server): check the updates instead.
    ...(config.acme.dns?.kind === "rfc2136" && acmeSites.length > 0 ? [checkDnsUpdates(config.acme.dns, acmeSites.flatMap((s) => s.hosts), deps.now())] : []),
    ...(config.acme.challenge === "dns-01" ? [] : acmeSites.flatMap((site) => site.hosts.map((host) => checkDnsPointsHere(host, deps.resolveHost, PREFLIGHT_TIMEOUTS_MS.dns, `${site.position}: `)))),
    ...config.sites.flatMap((site) => [
      ...(site.tls.kind === "files" ? [checkCertificateFiles(site, site.tls.certFile, site.tls.keyFile, deps.now())] : []),
      ...(site.tunnel ? [checkSshLogin(site.tunnel, `${site.position}: `, PREFLIGHT_TIMEOUTS_MS.ssh, deps.sshPath)] : []),
      // The tunnel's port is bound for a moment to test it: probing the notebook there meanwhile would meet that test.
      site.tunnel ? sequence(() => checkTunnelPort(site, site.tunnel as TunnelConfig, own), () => checkUpstream(site, PREFLIGHT_TIMEOUTS_MS.upstream)) : checkUpstream(site, PREFLIGHT_TIMEOUTS_MS.upstream),
    ]),
  ];
  return (await Promise.all(checks)).flat();
}

/** acme.profile once, and each site's own acme_profile, where they are written. */
function requestedProfiles(config: GatewayConfig): RequestedProfile[] {
  const global = config.acme.profile;
  const own = config.sites.filter((s) => s.acmeProfile !== null && s.acmeProfile !== global);
  return [
    ...(global !== null && config.sites.some((s) => s.acmeProfile === global) ? [{ profile: global, setting: "acme.profile", at: at(config.positions["acme.profile"], config.file) }] : []),
    ...own.map((s) => ({ profile: s.acmeProfile as string, setting: "acme_profile", at: `${s.position}: ` })),
  ];
}

async function sequence(...steps: Array<() => Promise<Finding>>): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const step of steps) findings.push(await step());
  return findings;
}

async function logCheck(target: string): Promise<Finding> {
  const problem = await findAccessLogProblem(target);
  return problem ? { level: "problem", text: problem.message } : { level: "ok", text: `logs.access ${target} is writable` };
}

/** Whether the admin endpoint of `config` answers /status for the same sites: a serve of this config runs. */
async function adminAnswersFor(config: GatewayConfig): Promise<boolean> {
  if (!config.admin) return false;
  const host = config.admin.host.includes(":") ? `[${config.admin.host}]` : config.admin.host;
  try {
    const res = await request(`http://${host}:${config.admin.port}/status`, { signal: AbortSignal.timeout(PREFLIGHT_TIMEOUTS_MS.admin) });
    const status = (await res.body.json()) as Array<{ site?: unknown }>;
    const names = new Set(config.sites.map((s) => s.hosts[0]));
    return Array.isArray(status) && status.length === names.size && status.every((s) => names.has(s.site as string));
  } catch {
    return false; // nothing answers there, or not a gateway
  }
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}
