import { runPreflight, systemPreflightDeps, type PreflightDeps } from "../preflight/preflight.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

/**
 * `gateway check`: validates gateway.yaml, then runs the preflight (src/preflight), which changes
 * nothing. Exit 78 for an invalid config, 1 when there is a problem (serve would fail or expose
 * something), 0 otherwise; warnings are printed either way.
 */
export async function checkCommand(configPath: string, deps: CliDeps, preflight: PreflightDeps = systemPreflightDeps()): Promise<ExitCode> {
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const findings = [{ level: "ok", text: `${configPath}: configuration is valid (${config.sites.length} site(s))` }, ...(await runPreflight(config, preflight))];
  for (const f of findings) deps.stdout.write(`${f.level.padEnd(7)} ${f.text}\n`);
  return findings.some((f) => f.level === "problem") ? ExitCode.Failed : ExitCode.Ok;
}
