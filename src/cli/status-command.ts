import { systemClock } from "../platform/clock.js";
import { createCertManager } from "../server/gateway.js";
import { DEFAULT_CERT_TIMING } from "../tls/cert-manager.js";
import { FileCertStore } from "../tls/cert-store.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

/**
 * `gateway status`: per site, the certificate's issuer and expiry, when renewal is due, and the
 * last attempt with its error. Let's Encrypt no longer mails expiry warnings: this is where to look.
 * Reads storage only; changes nothing.
 */
export async function statusCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const certs = createCertManager(config, new FileCertStore(config.storageDir), { clock: systemClock, logger: silent, certTiming: DEFAULT_CERT_TIMING }, () => undefined);
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
    deps.stdout.write(`${lines.join("\n")}\n`);
  }
  return ExitCode.Ok;
}
