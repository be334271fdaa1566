import { ConfigErrors } from "../config/config-error.js";
import { loadConfig } from "../config/load-config.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, JsonLineLogger } from "../platform/logger.js";
import { createGateway, type Gateway } from "../server/gateway.js";
import { isWorkerProcess, serveAsWorker } from "../server/worker-gateway.js";
import { findStorageProblem } from "../tls/cert-store.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

/**
 * `gateway serve`: runs until SIGTERM/SIGINT (drain, then exit 0). SIGHUP reloads gateway.yaml
 * and certificates; a bad new config is logged and the running one keeps serving.
 */
export async function serveCommand(configPath: string, deps: CliDeps): Promise<ExitCode> {
  // A worker the primary forked (workers: 2 or more) takes its config from the primary, not the file.
  if (isWorkerProcess()) return (await serveAsWorker(deps.stdout, deps.onSignal)) === "drained" ? ExitCode.Ok : ExitCode.Failed;
  const config = await loadConfigOrReport(configPath, deps);
  if (typeof config === "number") return config;
  const logger = new JsonLineLogger(deps.stdout, undefined, config.logs.format);
  let gateway: Gateway | undefined;
  let ports;
  try {
    const storageProblem = await findStorageProblem(config.storageDir);
    if (storageProblem) throw storageProblem;
    gateway = createGateway(config, logger, deps.stdout);
    ports = await gateway.start();
  } catch (err) {
    await gateway?.stop();
    if (!(err instanceof GatewayError)) throw err;
    logger.error("gateway.start_failed", { code: err.code, error: describeError(err) });
    deps.stderr.write(`gateway: ${describeError(err)}\n`);
    return ExitCode.Failed;
  }
  logger.info("gateway.ready", {
    address: config.listen.address,
    https: ports.https,
    http: ports.http,
    admin: ports.admin,
    ...(config.workers > 1 ? { workers: gateway.workerPids() } : {}),
    sites: config.sites.map((s) => ({ hosts: s.hosts, upstream: s.upstream.origin, tls: s.tls.kind })),
  });

  let reloading = Promise.resolve();
  const stopHup = deps.onSignal("SIGHUP", () => {
    reloading = reloading.then(async () => {
      try {
        await gateway.reload(await loadConfig(configPath, configPath));
        logger.info("gateway.reloaded", { config: configPath });
      } catch (err) {
        const problems = err instanceof ConfigErrors ? err.problems : [describeError(err)];
        logger.error("gateway.reload_failed", { problems, hint: "the previous configuration keeps serving; fix the file and send SIGHUP again" });
      }
    });
  });
  let unsubscribe: (() => void)[] = [stopHup];
  const signal = await new Promise<string>((resolve) => {
    unsubscribe = [...unsubscribe, ...(["SIGTERM", "SIGINT"] as const).map((name) => deps.onSignal(name, () => resolve(name)))];
  });
  for (const u of unsubscribe) u();
  logger.info("gateway.stopping", { signal });
  await reloading;
  await gateway.stop();
  logger.info("gateway.stopped", {});
  return ExitCode.Ok;
}
