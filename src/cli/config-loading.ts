import { ConfigErrors } from "../config/config-error.js";
import type { GatewayConfig } from "../config/gateway-config.js";
import { loadConfig } from "../config/load-config.js";
import { findStorageProblem } from "../tls/cert-store.js";
import type { CliDeps } from "./cli-deps.js";
import { ExitCode } from "./exit-code.js";

/** Loads the config for a command; prints every problem and returns exit 78 when it is invalid. */
export async function loadConfigOrReport(path: string, deps: CliDeps): Promise<GatewayConfig | ExitCode> {
  try {
    return await loadConfig(path, path);
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    deps.stderr.write(`${err.problems.join("\n")}\n`);
    deps.stderr.write(`gateway: ${err.problems.length} problem(s) in ${path}; nothing was started\n`);
    return ExitCode.Config;
  }
}

/** Like loadConfigOrReport, and the storage must be usable by this user: else its problem is printed, exit 1. */
export async function loadUsableConfigOrReport(path: string, deps: CliDeps): Promise<GatewayConfig | ExitCode> {
  const config = await loadConfigOrReport(path, deps);
  if (typeof config === "number") return config;
  const problem = await findStorageProblem(config.storageDir);
  if (!problem) return config;
  deps.stderr.write(`gateway: ${problem.message}\n`);
  return ExitCode.Failed;
}
