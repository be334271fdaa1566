import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

/** Loaded on demand: this keeps nginx-compat out of the gateway's module graph (serve never loads it). */
const loadNginxCompat = () => import("../../nginx-compat/nginx-compat.js");

/**
 * `gateway import-nginx FILE [--server-name NAME] [--prefix DIR]`: gateway.yaml on stdout,
 * warnings on stderr. `prefix` is the folder of nginx.conf (nginx-compat defaults it to /etc/nginx).
 */
export async function importNginxCommand(args: readonly string[], options: { readonly serverName?: string; readonly prefix?: string }, deps: CliDeps): Promise<ExitCode> {
  const [file, ...extra] = args;
  if (file === undefined || extra.length > 0) {
    deps.stderr.write("gateway: import-nginx takes one nginx config file, e.g. gateway import-nginx /etc/nginx/sites-enabled/default > gateway.yaml\n");
    return ExitCode.Usage;
  }
  const { importNginxFile, NginxImportError, NginxSyntaxError } = await loadNginxCompat();
  try {
    const result = await importNginxFile(file, options);
    deps.stdout.write(result.yaml);
    for (const warning of result.warnings) deps.stderr.write(`warning: ${warning}\n`);
    return ExitCode.Ok;
  } catch (err) {
    if (!(err instanceof NginxImportError || err instanceof NginxSyntaxError)) throw err;
    deps.stderr.write(`gateway: import-nginx: ${err.message}\n`);
    return err instanceof NginxImportError && err.usage ? ExitCode.Usage : ExitCode.Failed;
  }
}

/** `gateway export-nginx`: the nginx config equivalent to gateway.yaml on stdout. */
export async function exportNginxCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const { exportServerBlocks } = await loadNginxCompat();
  deps.stdout.write(exportServerBlocks(config));
  return ExitCode.Ok;
}
