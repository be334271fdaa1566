import { readFile } from "node:fs/promises";
import type { GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import { describeError } from "../platform/logger.js";
import { findStorageProblem } from "../tls/cert-store.js";
import { parseBundle } from "../tls/certificate-bundle.js";
import { findAccessLogProblem } from "../server/access-log.js";
import { probeNotebook } from "../tunnel/upstream-monitor.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

type Finding = { readonly level: "ok" | "warning" | "problem"; readonly text: string };

/**
 * `gateway check`: validates gateway.yaml, then a preflight that changes nothing: storage
 * writable, certificate files usable, each notebook reachable and password-protected. Exit 78 for
 * an invalid config, 1 when there is a problem (including a notebook without a password), 0
 * otherwise (an unreachable notebook is a warning: the tunnel may simply not be up yet).
 */
export async function checkCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const findings: Finding[] = [{ level: "ok", text: `${configPath}: configuration is valid (${config.sites.length} site(s))` }];
  findings.push(await checkStorage(config));
  if (config.logs.access) findings.push(await checkAccessLog(config.logs.access));
  for (const site of config.sites) {
    if (site.tls.kind === "files") findings.push(await checkCertificateFiles(site, site.tls.certFile, site.tls.keyFile));
    findings.push(await checkUpstream(site));
  }
  for (const f of findings) deps.stdout.write(`${f.level.padEnd(7)} ${f.text}\n`);
  return findings.some((f) => f.level === "problem") ? ExitCode.Failed : ExitCode.Ok;
}

async function checkStorage(config: GatewayConfig): Promise<Finding> {
  const problem = await findStorageProblem(config.storageDir);
  return problem ? { level: "problem", text: problem.message } : { level: "ok", text: `storage ${config.storageDir} is usable` };
}

async function checkAccessLog(target: string): Promise<Finding> {
  const problem = await findAccessLogProblem(target);
  return problem ? { level: "problem", text: problem.message } : { level: "ok", text: `logs.access ${target} is writable` };
}

async function checkCertificateFiles(site: SiteConfig, certFile: string, keyFile: string): Promise<Finding> {
  try {
    const bundle = parseBundle(await readFile(certFile, "utf8"), await readFile(keyFile, "utf8"), `${certFile} + ${keyFile}`);
    const missing = site.hosts.filter((h) => !bundle.names.includes(h));
    if (missing.length > 0) return { level: "warning", text: `${certFile} does not cover ${missing.join(", ")}; browsers will refuse those names` };
    return { level: "ok", text: `${certFile}: valid until ${bundle.notAfter.toISOString()}` };
  } catch (err) {
    return { level: "problem", text: describeError(err) };
  }
}

async function checkUpstream(site: SiteConfig): Promise<Finding> {
  const name = site.hosts[0];
  const upstream = site.upstream.host;
  switch ((await probeNotebook(site)).notebook) {
    case "protected":
      return { level: "ok", text: `${name}: the notebook at ${upstream} answers and demands a password` };
    case "unprotected":
      return site.allowUnprotectedUpstream
        ? { level: "warning", text: `${name}: the notebook at ${upstream} answers its API without a password; served anyway (allow_unprotected_upstream: true)` }
        : { level: "problem", text: `${name}: the notebook at ${upstream} answers its API without a password: exposing it would give anyone a shell on the workstation. Run jupyter notebook password on the workstation and restart Jupyter (or set allow_unprotected_upstream: true if something else guards it)` };
    case "not-a-notebook":
      return site.allowUnprotectedUpstream
        ? { level: "warning", text: `${name}: ${upstream} answers, but not like a Jupyter notebook server (GET ${site.baseUrl}api/kernels); served anyway (allow_unprotected_upstream: true)` }
        : { level: "problem", text: `${name}: ${upstream} answers, but not like a Jupyter notebook server (GET ${site.baseUrl}api/kernels), so serve refuses it: check upstream:, set base_url: if Jupyter runs with one (e.g. /jupyter/), or allow_unprotected_upstream: true if this server guards itself` };
    default:
      return site.tunnel
        ? { level: "warning", text: `${name}: the notebook at ${upstream} is not reachable now; gateway serve starts the tunnel to ${site.tunnel.ssh} itself` }
        : { level: "warning", text: `${name}: the notebook at ${upstream} is not reachable (is the tunnel up? ssh -N -L 127.0.0.1:${site.upstream.port || 80}:localhost:8888 workstation); start the notebook and the tunnel` };
  }
}
