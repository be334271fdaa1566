import { join } from "node:path";
import { caRole } from "../acme/fallback-issuer.js";
import type { AcmeConfig, GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import { systemClock } from "../platform/clock.js";
import { readFileIfExists } from "../platform/file-system.js";
import { silentLogger } from "../platform/logger.js";
import { probeNotebook, upstreamStatePath, type NotebookProbe } from "../tunnel/upstream-monitor.js";
import { createCertManager } from "../server/gateway.js";
import { DEFAULT_CERT_TIMING, type CertificateStatus } from "../tls/cert-manager.js";
import { FileCertStore, findStorageProblem } from "../tls/cert-store.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";
import { assessSite, describeDuration, worstLevel, type HealthLevel, type HealthProblem, type RecordedTunnel } from "./site-health.js";

export interface StatusArgs {
  readonly configPath: string;
  /** One JSON document (snake_case keys) instead of text. */
  readonly json: boolean;
}

/** Nagios plugin exit codes: OK, WARNING, CRITICAL. */
const EXIT_CODE_OF_LEVEL: Record<HealthLevel, ExitCode> = { ok: ExitCode.Ok, warning: ExitCode.StatusWarning, critical: ExitCode.StatusCritical };

/** What `serve` leaves in storage/upstreams/<site>.json. */
interface RecordedUpstream {
  readonly tunnel: RecordedTunnel | null;
  readonly updatedAt: string;
}

/** One site as `gateway status` reports it. */
interface SiteReport {
  readonly site: SiteConfig;
  readonly cert: CertificateStatus | undefined;
  /** null when no running `serve` recorded the site's upstream. */
  readonly recorded: RecordedUpstream | null;
  readonly notebook: NotebookProbe;
  readonly problems: readonly HealthProblem[];
}

/**
 * `gateway status`: per site, the certificate's issuer and expiry, when renewal is due, the
 * last attempt with its error, the tunnel as `serve` last recorded it, and the notebook as it
 * answers now. Let's Encrypt no longer mails expiry warnings: this is where to look. Exits
 * like a Nagios plugin, 0 OK, 1 warning, 2 critical (see site-health.ts for which is which), 3
 * unknown (storage this user cannot read), so
 * monitoring can run it as is. Reads storage only; changes nothing.
 */
export async function statusCommand(args: StatusArgs, deps: CliDeps): Promise<ExitCode> {
  const config = await loadConfigOrReport(args.configPath, deps);
  if (typeof config === "number") return config;
  const storageProblem = await findStorageProblem(config.storageDir);
  if (storageProblem) {
    // Not a warning about the site: monitoring that cannot read storage knows nothing (Nagios UNKNOWN).
    deps.stderr.write(`gateway status: UNKNOWN: ${storageProblem.message}; or run status as the gateway's user (sudo -u gateway gateway status)\n`);
    return ExitCode.StatusUnknown;
  }
  const certs = createCertManager(config, new FileCertStore(config.storageDir), { clock: systemClock, logger: silentLogger, certTiming: DEFAULT_CERT_TIMING }, () => undefined);
  const now = systemClock.now();
  const certificates = await certs.status();
  const reports = await Promise.all(
    config.sites.map(async (site): Promise<SiteReport> => {
      const cert = certificates.find((c) => c.site === site.hosts[0]);
      const recordedText = site.tunnel ? await readFileIfExists(upstreamStatePath(join(config.storageDir, "upstreams"), site)) : null;
      const recorded = recordedText ? (JSON.parse(recordedText) as RecordedUpstream) : null;
      const notebook = (await probeNotebook(site)).notebook;
      const problems = assessSite(
        {
          certificate: cert?.bundle ?? null,
          lastError: cert?.state.lastError ?? null,
          ...(site.tunnel ? { tunnel: recorded?.tunnel ?? null, ...(recorded ? { tunnelRecordedAt: new Date(recorded.updatedAt) } : {}) } : {}),
          notebook,
          allowUnprotectedUpstream: site.allowUnprotectedUpstream,
        },
        now,
      );
      return { site, cert, recorded, notebook, problems };
    }),
  );
  const level = worstLevel(reports.flatMap((r) => r.problems));
  if (args.json) deps.stdout.write(`${JSON.stringify({ level, sites: reports.map((r) => reportJson(r, config)) }, null, 2)}\n`);
  else {
    for (const report of reports) deps.stdout.write(`${describeSite(report, config, now).join("\n")}\n`);
    const count = reports.reduce((n, r) => n + r.problems.length, 0);
    deps.stdout.write(`status: ${level.toUpperCase()}${count > 0 ? ` (${count} problem${count === 1 ? "" : "s"})` : ""}\n`);
  }
  return EXIT_CODE_OF_LEVEL[level];
}

function describeSite({ site, cert, recorded, notebook, problems }: SiteReport, config: GatewayConfig, now: Date): string[] {
  const lines = [`${site.hosts[0]} (tls: ${site.tls.kind})`];
  const bundle = cert?.bundle;
  if (!bundle) lines.push("  certificate: none yet");
  else {
    const remainingMs = bundle.notAfter.getTime() - now.getTime();
    lines.push(`  issuer:      ${bundle.issuer}`);
    lines.push(`  expires:     ${formatInstant(bundle.notAfter)} (${remainingMs <= 0 ? `EXPIRED ${describeDuration(-remainingMs)} ago` : `in ${describeDuration(remainingMs)}`})`);
  }
  if (cert?.renewAt) {
    const when = cert.renewAt <= now ? "due now" : `renews on ${formatInstant(cert.renewAt)} (in ${describeDuration(cert.renewAt.getTime() - now.getTime())})`;
    lines.push(`  renewal:     ${when}${cert.state.ari ? ", in the CA's ARI window" : ""}`);
  }
  const state = cert?.state;
  if (state?.lastAttempt) lines.push(`  last try:    ${state.lastAttempt}${state.lastError ? ` failed: ${state.lastError}` : " succeeded"}`);
  if (state?.retryAfter && new Date(state.retryAfter) > now) lines.push(`  waiting:     the CA asked to wait until ${state.retryAfter}`);
  if (state?.lastError && state.nextAttempt && new Date(state.nextAttempt) > now) lines.push(`  next try:    ${formatInstant(new Date(state.nextAttempt))} (in ${describeDuration(new Date(state.nextAttempt).getTime() - now.getTime())}), by gateway serve`);
  // After the lines status printed before fallback CAs existed, which scripts may read in order.
  if (bundle && cert.issuedBy && site.tls.kind === "acme") lines.push(`  issued by:   ${describeIssuedBy(config.acme, cert.issuedBy)}`);
  if (site.tunnel) {
    const t = recorded?.tunnel;
    const described = !t ? "no record: is gateway serve running?"
      : t.kind === "up" ? `up since ${t.since}`
      : t.kind === "reconnecting" ? `down, reconnecting (attempt ${t.attempt}): ${t.lastError}`
      : t.kind;
    lines.push(`  tunnel:      ssh -L to ${site.tunnel.ssh}:${site.tunnel.port} → ${site.tunnel.remote}: ${described}${recorded ? ` (recorded ${recorded.updatedAt})` : ""}`);
  }
  const words: Record<NotebookProbe, string> = {
    protected: "answers, password required",
    unprotected: site.allowUnprotectedUpstream ? "answers WITHOUT a password (allowed by allow_unprotected_upstream)" : "answers WITHOUT a password: refused by the gateway; run jupyter notebook password",
    "not-a-notebook": "answers, but not like a Jupyter notebook",
    unreachable: "not reachable",
    unknown: "unknown",
  };
  lines.push(`  upstream:    ${site.upstream.host}: ${words[notebook]}`);
  for (const p of problems) lines.push(`  ${`${p.level.toUpperCase()}:`.padEnd(12)} ${p.message}`);
  return lines;
}

/** The site for `--json`: the keys of the admin endpoint's /status, plus the tunnel's record and the verdict. */
function reportJson({ site, cert, recorded, notebook, problems }: SiteReport, config: GatewayConfig): Record<string, unknown> {
  const t = recorded?.tunnel;
  return {
    site: site.hosts[0],
    tls: site.tls.kind,
    issuer: cert?.bundle?.issuer ?? null,
    issued_by: cert?.issuedBy ?? null,
    issued_by_fallback: cert?.issuedBy ? caRole(config.acme, cert.issuedBy) === "fallback" : null,
    not_before: cert?.bundle?.notBefore ?? null,
    not_after: cert?.bundle?.notAfter ?? null,
    renew_at: cert?.renewAt ?? null,
    renew_at_from_ari: Boolean(cert?.state.ari),
    last_attempt: cert?.state.lastAttempt ?? null,
    last_error: cert?.state.lastError ?? null,
    retry_after: cert?.state.retryAfter ?? null,
    next_attempt: cert?.state.nextAttempt ?? null,
    tunnel: site.tunnel
      ? {
          ssh: site.tunnel.ssh,
          port: site.tunnel.port,
          remote: site.tunnel.remote,
          kind: t?.kind ?? null,
          attempt: t?.attempt ?? null,
          since: t?.since ?? null,
          next_attempt_at: t?.nextAttemptAt ?? null,
          last_error: t?.lastError ?? null,
          recorded_at: recorded?.updatedAt ?? null,
        }
      : null,
    upstream: site.upstream.host,
    notebook,
    level: worstLevel(problems),
    problems,
  };
}

/** "https://acme.zerossl.com/v2/DV90 (acme.fallback: the primary CA failed)", or the primary's, or the local CA. */
function describeIssuedBy(acme: AcmeConfig, issuedBy: string): string {
  const role = caRole(acme, issuedBy);
  if (role === "primary") return `${issuedBy} (acme.directory)`;
  if (role === "fallback") return `${issuedBy} (acme.fallback: the primary CA had failed; the next renewal tries the primary first)`;
  return issuedBy;
}

/** 2025-06-01 14:00 UTC: to the minute, which is what a renewal date needs. */
function formatInstant(instant: Date): string {
  return `${instant.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}
