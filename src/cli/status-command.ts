import { join } from "node:path";
import type { SiteConfig } from "../config/gateway-config.js";
import { systemClock } from "../platform/clock.js";
import { readFileIfExists } from "../platform/file-system.js";
import { silentLogger } from "../platform/logger.js";
import { probeNotebook, upstreamStatePath } from "../tunnel/upstream-monitor.js";
import { createCertManager } from "../server/gateway.js";
import { DEFAULT_CERT_TIMING } from "../tls/cert-manager.js";
import { FileCertStore } from "../tls/cert-store.js";
import type { CliDeps } from "./cli-deps.js";
import { loadUsableConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

/**
 * `gateway status`: per site, the certificate's issuer and expiry, when renewal is due, the
 * last attempt with its error, the tunnel as `serve` last recorded it, and the notebook as it answers now. Let's Encrypt no longer mails expiry warnings: this is where to look.
 * Reads storage only; changes nothing.
 */
export async function statusCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  const config = await loadUsableConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const certs = createCertManager(config, new FileCertStore(config.storageDir), { clock: systemClock, logger: silentLogger, certTiming: DEFAULT_CERT_TIMING }, () => undefined);
  const now = systemClock.now();
  for (const s of await certs.status()) {
    const lines = [`${s.site} (tls: ${s.source})`];
    if (!s.bundle) lines.push("  certificate: none yet");
    else {
      const days = (s.bundle.notAfter.getTime() - now.getTime()) / 86_400_000;
      lines.push(`  issuer:      ${s.bundle.issuer}`);
      lines.push(`  expires:     ${s.bundle.notAfter.toISOString()} (${days < 0 ? "EXPIRED" : `in ${days.toFixed(1)} days`})`);
    }
    if (s.renewAt) lines.push(`  renewal:     ${s.renewAt <= now ? "due now" : `due ${s.renewAt.toISOString()}`}${s.state.ari ? " (CA's ARI window)" : ""}`);
    if (s.state.lastAttempt) lines.push(`  last try:    ${s.state.lastAttempt}${s.state.lastError ? ` failed: ${s.state.lastError}` : " succeeded"}`);
    if (s.state.retryAfter && new Date(s.state.retryAfter) > now) lines.push(`  waiting:     the CA asked to wait until ${s.state.retryAfter}`);
    const site = config.sites.find((c) => c.hosts[0] === s.site);
    if (site) lines.push(...(await describeUpstream(site, config.storageDir)));
    deps.stdout.write(`${lines.join("\n")}\n`);
  }
  return ExitCode.Ok;
}

/** The tunnel as the running `serve` last recorded it, and the notebook as it answers now. */
async function describeUpstream(site: SiteConfig, storageDir: string): Promise<string[]> {
  const lines: string[] = [];
  if (site.tunnel) {
    const recorded = await readFileIfExists(upstreamStatePath(join(storageDir, "upstreams"), site));
    const tunnel = recorded ? (JSON.parse(recorded) as { tunnel: { kind: string; attempt?: number; lastError?: string; since?: string } | null; updatedAt: string }) : null;
    const t = tunnel?.tunnel;
    const state = !t ? "no record: is gateway serve running?"
      : t.kind === "up" ? `up since ${t.since}`
      : t.kind === "reconnecting" ? `down, reconnecting (attempt ${t.attempt}): ${t.lastError}`
      : t.kind;
    lines.push(`  tunnel:      ssh -L to ${site.tunnel.ssh}:${site.tunnel.port} → ${site.tunnel.remote}: ${state}${tunnel ? ` (recorded ${tunnel.updatedAt})` : ""}`);
  }
  const probe = (await probeNotebook(site)).notebook;
  const words: Record<typeof probe, string> = {
    protected: "answers, password required",
    unprotected: site.allowUnprotectedUpstream ? "answers WITHOUT a password (allowed by allow_unprotected_upstream)" : "answers WITHOUT a password: refused by the gateway; run jupyter notebook password",
    "not-a-notebook": "answers, but not like a Jupyter notebook",
    unreachable: "not reachable",
    unknown: "unknown",
  };
  lines.push(`  upstream:    ${site.upstream.host}: ${words[probe]}`);
  return lines;
}
