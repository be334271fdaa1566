import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { dirname } from "node:path";
import type { GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import { describeError } from "../platform/logger.js";
import { parseBundle } from "../tls/certificate-bundle.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

type Finding = { readonly level: "ok" | "warning" | "problem"; readonly text: string };

/**
 * `gateway check`: validates gateway.yaml, then a preflight that changes nothing: storage
 * writable, certificate files usable, upstreams reachable. Exit 78 for an invalid config, 1 when
 * a problem would stop `serve`, 0 otherwise (an unreachable upstream is a warning: the tunnel may
 * simply not be up yet).
 */
export async function checkCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const findings: Finding[] = [{ level: "ok", text: `${configPath}: configuration is valid (${config.sites.length} site(s))` }];
  findings.push(await checkStorage(config));
  for (const site of config.sites) {
    if (site.tls.kind === "files") findings.push(await checkCertificateFiles(site, site.tls.certFile, site.tls.keyFile));
    findings.push(await checkUpstream(site));
  }
  for (const f of findings) deps.stdout.write(`${f.level.padEnd(7)} ${f.text}\n`);
  return findings.some((f) => f.level === "problem") ? ExitCode.Failed : ExitCode.Ok;
}

async function checkStorage(config: GatewayConfig): Promise<Finding> {
  for (let path = config.storageDir; ; path = dirname(path)) {
    try {
      await access(path, constants.W_OK);
      return { level: "ok", text: `storage ${config.storageDir} is writable${path === config.storageDir ? "" : ` (will be created in ${path})`}` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" || path === dirname(path)) {
        return { level: "problem", text: `storage ${config.storageDir} is not writable (${code} at ${path}); create it for the gateway's user, or change storage in gateway.yaml` };
      }
    }
  }
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
  const { hostname, port, protocol } = site.upstream;
  const target = { host: hostname.replace(/^\[|\]$/g, ""), port: Number(port || (protocol === "https:" ? 443 : 80)) };
  const error = await new Promise<string | null>((resolve) => {
    const socket = connect(target, () => {
      socket.destroy();
      resolve(null);
    });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve("no answer within 3 s");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  return error === null
    ? { level: "ok", text: `${site.hosts[0]}: upstream ${site.upstream.host} accepts connections` }
    : { level: "warning", text: `${site.hosts[0]}: upstream ${site.upstream.host} is not reachable (${error}); start the notebook and the tunnel (ssh -N -L 127.0.0.1:${target.port}:localhost:8888 workstation)` };
}
