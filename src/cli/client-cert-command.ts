import { systemClock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError } from "../platform/logger.js";
import { ClientCa } from "../tls/client-ca.js";
import { join } from "node:path";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

/**
 * `gateway client-cert add NAME` / `revoke NAME`: client certificates for sites with
 * `client_certificates: required`. A running gateway sees revocations within about a second.
 */
export async function clientCertCommand(configPath: string, args: readonly string[], deps: CliDeps): Promise<ExitCode> {
  const [action, name, ...rest] = args;
  if ((action !== "add" && action !== "revoke") || !name || rest.length > 0) {
    deps.stderr.write("usage: gateway client-cert add NAME | gateway client-cert revoke NAME\n");
    return ExitCode.Usage;
  }
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const ca = new ClientCa(join(config.storageDir, "clients"), systemClock);
  try {
    if (action === "add") {
      const issued = await ca.add(name);
      deps.stdout.write(
        [
          `client certificate for ${name}: ${issued.p12Path}`,
          `password: ${issued.password}`,
          `valid until ${issued.notAfter.toISOString()}; serial ${issued.serial}`,
          "Copy the .p12 file to the device and import it with this password (it is not stored anywhere).",
          "",
        ].join("\n"),
      );
      if (!config.sites.some((s) => s.clientCertificatesRequired)) deps.stdout.write("note: no site sets client_certificates: required yet, so no site asks for it\n");
    } else {
      const serial = await ca.revoke(name);
      deps.stdout.write(`revoked ${name} (serial ${serial}); a running gateway refuses it within seconds\n`);
    }
    return ExitCode.Ok;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    deps.stderr.write(`gateway client-cert: ${describeError(err)}\n`);
    return ExitCode.Failed;
  }
}
