import { request } from "undici";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

const HEALTHZ_TIMEOUT_MS = 5_000;

/**
 * `gateway healthz`: asks the running serve of this config for /healthz on its admin endpoint
 * (wherever gateway.yaml puts it): exit 0 when it answers 200, else 1 with why. For a container's
 * HEALTHCHECK or a monitoring probe; changes nothing.
 */
export async function healthzCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  if (!config.admin) {
    deps.stderr.write(`gateway healthz: ${configPath} has admin: false, so serve has no /healthz to ask; set admin: 127.0.0.1:2019\n`);
    return ExitCode.Failed;
  }
  const host = config.admin.host.includes(":") ? `[${config.admin.host}]` : config.admin.host;
  const url = `http://${host}:${config.admin.port}/healthz`;
  try {
    const res = await request(url, { headersTimeout: HEALTHZ_TIMEOUT_MS, bodyTimeout: HEALTHZ_TIMEOUT_MS });
    const body = (await res.body.text()).trim();
    if (res.statusCode === 200) {
      deps.stdout.write(`${url}: ${body || "ok"}\n`);
      return ExitCode.Ok;
    }
    deps.stderr.write(`gateway healthz: ${url} answered ${res.statusCode}: ${body.slice(0, 200)}\n`);
  } catch (err) {
    deps.stderr.write(`gateway healthz: ${url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; is gateway serve running with this config?\n`);
  }
  return ExitCode.Failed;
}
