import type { Server } from "node:net";
import { createServer as createTlsServer } from "node:https";
import type { GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import { SiteTable } from "../config/site-table.js";
import { systemClock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { JsonLineLogger, silentLogger, type Logger } from "../platform/logger.js";
import { describePortHolder, findPortHolder, type PortHolder } from "../platform/port-holder.js";
import { createCertManager } from "../server/gateway.js";
import { createHttpListener } from "../server/http-listener.js";
import { listen } from "../server/lifecycle.js";
import { DEFAULT_CERT_TIMING, type RenewOutcome } from "../tls/cert-manager.js";
import { FileCertStore } from "../tls/cert-store.js";
import { SniContexts } from "../tls/sni-context.js";
import type { CliDeps } from "./cli-deps.js";
import { loadUsableConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

export interface RenewArgs {
  readonly configPath: string;
  readonly force: boolean;
  readonly dryRun: boolean;
  readonly quiet: boolean;
}

const LETSENCRYPT_STAGING = new URL("https://acme-staging-v02.api.letsencrypt.org/directory");

/**
 * `gateway renew`, for cron: renews every certificate that is due and exits. A running `serve`
 * picks the new files up within seconds. Challenge answers go through the store; when no gateway
 * holds the challenge port, `renew` answers them itself. Exit 1 when a due certificate could not
 * be renewed. `--quiet` prints only what was renewed or failed, so cron mails only what matters.
 */
export async function renewCommand(args: RenewArgs, deps: CliDeps): Promise<ExitCode> {
  const config = await loadUsableConfigOrReport(args.configPath, deps);
  if (typeof config === "number") return config;
  const logger: Logger = args.quiet ? silentLogger : new JsonLineLogger(deps.stderr);
  const store = new FileCertStore(config.storageDir);
  await store.init();
  // --dry-run orders from Let's Encrypt staging rather than production (its rate limits are generous).
  const directory = args.dryRun && config.acme.directoryUrl.hostname === "acme-v02.api.letsencrypt.org" ? LETSENCRYPT_STAGING : undefined;
  const certs = createCertManager(config, store, { clock: systemClock, logger, certTiming: DEFAULT_CERT_TIMING }, () => undefined, directory);

  // Started at the first ACME order only, then shared by every site; a failure to bind fails each ACME site.
  let responder: Promise<Server | undefined> | undefined;
  const beforeOrder = async (site: SiteConfig): Promise<void> => {
    if (site.tls.kind === "acme") await (responder ??= startResponder(config, store, logger));
  };
  let outcomes: RenewOutcome[];
  try {
    outcomes = await certs.renewDue({ force: args.force, dryRun: args.dryRun, beforeOrder });
  } finally {
    const server = await responder?.catch(() => undefined);
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  }
  for (const outcome of outcomes) {
    const line = describeOutcome(outcome, args.dryRun);
    if (!args.quiet || outcome.kind === "renewed" || outcome.kind === "failed") deps.stdout.write(`${line}\n`);
  }
  return outcomes.some((o) => o.kind === "failed") ? ExitCode.Failed : ExitCode.Ok;
}

function describeOutcome(o: RenewOutcome, dryRun: boolean): string {
  switch (o.kind) {
    case "renewed":
      return dryRun
        ? `dry-run ${o.site}: the CA issued a certificate (not installed), issuer ${o.bundle.issuer}`
        : `renewed ${o.site}: valid until ${o.bundle.notAfter.toISOString()}, issuer ${o.bundle.issuer}`;
    case "failed":
      return `failed  ${o.site}: ${o.error}`;
    case "fresh":
      return `ok      ${o.site}: not due until ${o.renewAt.toISOString()}`;
    case "renewed-elsewhere":
      return `ok      ${o.site}: renewed by another gateway process just now`;
    case "postponed":
      return `waiting ${o.site}: the CA asked to wait until ${o.until.toISOString()}`;
    case "user-managed":
      return `skip    ${o.site}: certificate files are managed outside the gateway (tls: {cert, key})`;
  }
}

/**
 * Says who holds the challenge port instead of `renew`: a `gateway serve` answers challenges from
 * its storage; anything else makes the CA's validation fail, so say what it is.
 */
function logPortHolder(port: number, holder: PortHolder | null, logger: Logger): void {
  const answers = "the CA's challenges succeed only if that is gateway serve with this storage; otherwise stop it while renewing, or let it pass /.well-known/acme-challenge/ to the gateway";
  if (!holder) {
    logger.warn("acme.responder_elsewhere", { port, holder: null, reason: `port ${port} is in use, by a process /proc does not show; ${answers}` });
    return;
  }
  const who = describePortHolder(holder);
  if (holder.argv.includes("serve")) logger.info("acme.responder_elsewhere", { port, holder: who, reason: `port ${port} is held by ${who}, which answers challenges from its storage` });
  else logger.warn("acme.responder_elsewhere", { port, holder: who, reason: `port ${port} is held by ${who}; ${answers}` });
}

/**
 * Answers challenges when no `gateway serve` holds the port: HTTP-01 on listen.http, TLS-ALPN-01
 * on listen.https (DNS-01 needs neither). A port in use means a gateway answers from the same store: nothing to do.
 */
async function startResponder(config: GatewayConfig, store: FileCertStore, logger: Logger): Promise<Server | undefined> {
  // dns-01 answers in DNS: no port to hold.
  if (config.acme.challenge === "dns-01" || !config.sites.some((s) => s.tls.kind === "acme")) return undefined;
  const sites = new SiteTable(config.sites);
  const alpn = config.acme.challenge === "tls-alpn-01";
  const port = alpn ? config.listen.httpsPort : config.listen.httpPort;
  if (port === null) return undefined;
  const server: Server = alpn
    ? (() => {
        const sni = new SniContexts((name) => store.readAlpnCertificate(name));
        return createTlsServer({ SNICallback: sni.SNICallback, ALPNCallback: sni.ALPNCallback });
      })()
    : createHttpListener(() => store, () => sites, () => config.listen.httpsPort, config.timeouts, logger);
  try {
    await listen(server, port, config.listen.address, alpn ? "listen.https" : "listen.http");
    logger.info("acme.responder_started", { port, challenge: config.acme.challenge });
    return server;
  } catch (err) {
    if (err instanceof GatewayError && err.code === "listen.in_use") {
      logPortHolder(port, findPortHolder(port), logger);
      return undefined;
    }
    throw err;
  }
}

