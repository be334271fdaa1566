import { randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import { unwatchFile, watchFile } from "node:fs";
import { join } from "node:path";
import { AcmeIssuer } from "../acme/acme-issuer.js";
import { caRole, FallbackIssuer } from "../acme/fallback-issuer.js";
import type { AcmeCa, GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import type { CertificateBundle } from "../tls/certificate-bundle.js";
import { defaultSite, SiteTable } from "../config/site-table.js";
import { systemClock, type Clock } from "../platform/clock.js";
import { describeError, type Logger } from "../platform/logger.js";
import { LoginThrottle } from "../guard/login-throttle.js";
import { loginStatePaths } from "../guard/login-unlocks.js";
import { CertManager, DEFAULT_CERT_TIMING, type CertManagerTiming } from "../tls/cert-manager.js";
import { FileCertStore } from "../tls/cert-store.js";
import { ClientCa } from "../tls/client-ca.js";
import { UpstreamMonitor, upstreamHealthJson } from "../tunnel/upstream-monitor.js";
import { LocalCaIssuer } from "../tls/local-ca-issuer.js";
import { SniContexts } from "../tls/sni-context.js";
import { CountingLogger, Metrics } from "../platform/metrics.js";
import { createAdminListener } from "./admin-listener.js";
import { createHttpListener } from "./http-listener.js";
import { HttpsServing } from "./https-serving.js";
import { drain, listen } from "./lifecycle.js";
import { WorkerPool } from "./worker-pool.js";

export interface GatewayDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly certTiming: CertManagerTiming;
}

/** The ports actually bound (listen.https: 0 picks one). */
export interface BoundPorts {
  readonly https: number;
  readonly http: number | null;
  readonly admin: number | null;
}

/** Session ticket keys are replaced this often (and at every start). */
const TICKET_KEY_LIFETIME_MS = 12 * 3600_000;

/** The parts that a config reload replaces as a whole. */
interface Generation {
  readonly config: GatewayConfig;
  readonly sites: SiteTable;
  readonly store: FileCertStore;
  readonly certs: CertManager;
}

/**
 * The running gateway: certificates, then listeners; stopped in reverse. Reload builds a new
 * generation (sites, certificates) beside the old one and swaps it in only when it started.
 * With `workers:` 2 or more this is the primary: HTTPS is served by a WorkerPool, and this process
 * keeps what must exist once (certificates and ACME, tunnels, the login guard's counts, admin).
 */
export class Gateway {
  /** The certificates served, by name; null with workers, which each hold their own. */
  private readonly sni: SniContexts | null;
  private readonly upstreams: UpstreamMonitor;
  /** Outlives config reloads, so failed-login counts are never reset by one. */
  private readonly logins: LoginThrottle;
  /** Exactly one of the two serves HTTPS: this process, or its workers. */
  private readonly serving: HttpsServing | null;
  private readonly workers: WorkerPool | null;
  private generation: Generation;
  private httpServer: HttpServer | undefined;
  private adminServer: HttpServer | undefined;
  private boundHttpsPort = 0;
  private ticketRotation: NodeJS.Timeout | undefined;
  private readonly clientCa: ClientCa;
  /** PEM of the client CA, when a site requires client certificates. */
  private clientCaPem: string | undefined;
  private revokedSerials: ReadonlySet<string> = new Set();

  constructor(
    config: GatewayConfig,
    private readonly deps: GatewayDeps,
    private readonly metrics: Metrics,
    stdout: NodeJS.WritableStream,
  ) {
    this.upstreams = new UpstreamMonitor(deps.clock, deps.logger, join(config.storageDir, "upstreams"), config.timeouts.upstreamIdleMs);
    this.clientCa = new ClientCa(join(config.storageDir, "clients"), deps.clock);
    const loginState = loginStatePaths(config.storageDir);
    this.logins = new LoginThrottle(loginState.failures, loginState.unlocks, deps.clock, deps.logger);
    this.generation = this.makeGeneration(config);
    const store = this.generation.store;
    if (config.workers > 1) {
      this.sni = null;
      this.serving = null;
      this.workers = new WorkerPool(config, { logins: this.logins, sites: () => this.generation.sites, tunnels: () => this.upstreams.tunnelStates(), logger: deps.logger });
      this.upstreams.onTunnelState((key, state) => this.workers?.setTunnelState(key, state));
    } else {
      this.workers = null;
      this.sni = new SniContexts((name) => store.readAlpnCertificate(name));
      this.serving = new HttpsServing({
        config,
        sites: () => this.generation.sites,
        sni: this.sni,
        upstreams: this.upstreams,
        logins: this.logins,
        clientCerts: { requested: config.sites.some((s) => s.clientCertificatesRequired), revokedSerials: () => this.revokedSerials },
        metrics,
        clock: deps.clock,
        logger: deps.logger,
        stdout,
      });
    }
  }

  async start(): Promise<BoundPorts> {
    const { config } = this.generation;
    const clientCertsRequested = config.sites.some((s) => s.clientCertificatesRequired);
    if (clientCertsRequested) {
      this.clientCaPem = await this.clientCa.caCertPem();
      await this.reloadRevocations();
      watchFile(this.clientCa.revokedPath, { interval: 1000, persistent: false }, () => void this.reloadRevocations());
    }
    // `gateway unlock` writes the file; polled like the revocations, so it applies within ~1 s.
    watchFile(this.logins.unlocksPath, { interval: 1000, persistent: false }, () => this.logins.rereadUnlocks());
    this.upstreams.update(config.sites);
    this.upstreams.startProbing();
    await this.generation.certs.start();
    this.boundHttpsPort = this.workers ? await this.workers.start(randomBytes(48)) : await this.serving!.listen(config.listen.httpsPort);
    let httpPort: number | null = null;
    if (config.listen.httpPort !== null) {
      this.httpServer = createHttpListener(() => this.generation.store, () => this.generation.sites, () => this.boundHttpsPort, config.timeouts, this.deps.logger);
      httpPort = await listen(this.httpServer, config.listen.httpPort, config.listen.address, "listen.http");
    }
    this.ticketRotation = setInterval(() => (this.workers ? this.workers.setTicketKeys(randomBytes(48)) : this.sni?.rotateTicketKeys()), TICKET_KEY_LIFETIME_MS);
    this.ticketRotation.unref();
    let adminPort: number | null = null;
    if (config.admin) {
      this.registerGauges();
      this.adminServer = createAdminListener({ status: () => this.status(), metrics: async () => this.metrics.render(this.workers ? await this.workers.metrics() : []) });
      adminPort = await listen(this.adminServer, config.admin.port, config.admin.host, "admin");
    }
    // Orders need the listeners up: the CA connects back to answer HTTP-01 / TLS-ALPN-01.
    this.generation.certs.startRenewing();
    return { https: this.boundHttpsPort, http: httpPort, admin: adminPort };
  }

  /** Applies a new, already validated config; on failure the old one keeps serving. */
  async reload(config: GatewayConfig): Promise<void> {
    this.serving?.reopenLog();
    const old = this.generation;
    const next = this.makeGeneration(config);
    try {
      await next.certs.start();
    } catch (err) {
      next.certs.stop();
      throw err;
    }
    this.generation = next;
    this.upstreams.update(config.sites);
    old.certs.stop();
    next.certs.startRenewing();
    this.sni?.retain(new Set(config.sites.flatMap((s) => s.hosts)));
    this.workers?.reload(config);
    const restartNeeded = ["listen", "storageDir", "timeouts", "workers"].filter((key) => JSON.stringify(old.config[key as keyof GatewayConfig]) !== JSON.stringify(config[key as keyof GatewayConfig]));
    if (restartNeeded.length > 0) this.deps.logger.warn("gateway.restart_needed", { changed: restartNeeded, hint: "listen, storage, timeouts and workers changes apply after a restart" });
  }

  /** Drains requests, closes WebSockets, stops timers. Safe after a partial start. */
  async stop(): Promise<void> {
    clearInterval(this.ticketRotation);
    unwatchFile(this.clientCa.revokedPath);
    unwatchFile(this.logins.unlocksPath);
    const { drainMs } = this.generation.config.timeouts;
    await Promise.all([
      this.serving?.stop(),
      this.workers?.stop(),
      this.httpServer ? drain(this.httpServer, new Set(), drainMs) : undefined,
      this.adminServer ? drain(this.adminServer, new Set(), drainMs) : undefined,
    ]);
    this.generation.certs.stop();
    await this.upstreams.stop();
  }

  /** PIDs of the worker processes (none without `workers:`), for the ready line and tests. */
  workerPids(): number[] {
    return this.workers?.pids() ?? [];
  }

  /** What /status shows: `gateway status`'s data plus the live tunnel and notebook state; snake_case keys, as in the config and logs. */
  private async status(): Promise<unknown> {
    const certificates = await this.generation.certs.status();
    return this.generation.config.sites.map((site) => {
      const cert = certificates.find((c) => c.site === site.hosts[0]);
      return {
        site: site.hosts[0],
        tls: site.tls.kind,
        issuer: cert?.bundle?.issuer ?? null,
        issued_by: cert?.issuedBy ?? null,
        issued_by_fallback: cert?.issuedBy ? caRole(this.generation.config.acme, cert.issuedBy) === "fallback" : null,
        not_after: cert?.bundle?.notAfter ?? null,
        renew_at: cert?.renewAt ?? null,
        last_attempt: cert?.state.lastAttempt ?? null,
        last_error: cert?.state.lastError ?? null,
        upstream: site.upstream.host,
        ...upstreamHealthJson(this.upstreams.health(site)),
      };
    });
  }

  private registerGauges(): void {
    this.metrics.gauge("gateway_certificate_expiry_timestamp_seconds", "notAfter of the certificate each site serves, in Unix seconds.", () =>
      this.generation.certs.servingCertificates().map(([site, bundle]) => [{ site }, Math.floor(bundle.notAfter.getTime() / 1000)]),
    );
    this.metrics.gauge("gateway_certificate_ca_info", "1 per site, labelled with the CA that issued the certificate it serves: the ACME directory URL (fallback=\"true\" for one of acme.fallback) or \"local CA\".", () =>
      this.generation.certs.servingIssuers().map(([site, ca]) => [{ site, ca, fallback: String(caRole(this.generation.config.acme, ca) === "fallback") }, 1]),
    );
    this.metrics.gauge("gateway_tunnel_up", "1 while the site's SSH tunnel is up, 0 otherwise.", () =>
      this.generation.config.sites.filter((s) => s.tunnel).map((s) => [{ site: s.hosts[0] ?? "" }, this.upstreams.health(s).tunnel?.kind === "up" ? 1 : 0]),
    );
  }

  private async reloadRevocations(): Promise<void> {
    try {
      this.revokedSerials = await this.clientCa.revokedSerials();
      this.workers?.setRevocations(this.revokedSerials);
    } catch (err) {
      this.deps.logger.error("guard.revocations_unreadable", { file: this.clientCa.revokedPath, error: describeError(err), keeps: this.revokedSerials.size });
    }
  }

  private makeGeneration(config: GatewayConfig): Generation {
    const store = new FileCertStore(config.storageDir, this.deps.clock);
    const noSni = defaultSite(config.sites);
    const certs = createCertManager(config, store, this.deps, (site, bundle) => {
      const isDefault = site === noSni;
      const clientCaPem = site.clientCertificatesRequired ? this.clientCaPem : undefined;
      if (this.workers) this.workers.setCertificate({ hosts: site.hosts, certPem: bundle.certPem, keyPem: bundle.keyPem, isDefault, clientCaPem: clientCaPem ?? null });
      else this.sni?.set(site.hosts, bundle, isDefault, clientCaPem);
    });
    return { config, sites: new SiteTable(config.sites), store, certs };
  }
}

/** Certificates for `config`: what `serve` runs, and what `renew` and `status` use on their own. */
export function createCertManager(config: GatewayConfig, store: FileCertStore, deps: GatewayDeps, onCertificate: (site: SiteConfig, bundle: CertificateBundle) => void, acmeDirectory?: URL): CertManager {
  const acme = (ca: AcmeCa): AcmeIssuer => new AcmeIssuer(config.acme, config.listen.httpPort, store, deps.clock, deps.logger, ca);
  const primary = acme(acmeDirectory ? { ...config.acme, directoryUrl: acmeDirectory } : config.acme);
  const issuers = {
    internal: new LocalCaIssuer(store, deps.clock, deps.logger),
    acme: config.acme.fallbacks.length > 0 ? new FallbackIssuer([primary, ...config.acme.fallbacks.map(acme)], deps.logger) : primary,
  };
  return new CertManager(config.sites, store, issuers, onCertificate, deps.clock, deps.logger, deps.certTiming);
}

/** The composition root: every logged event is also counted as a metric. */
export function createGateway(config: GatewayConfig, logger: Logger, stdout: NodeJS.WritableStream, deps: Partial<GatewayDeps> = {}): Gateway {
  const metrics = new Metrics();
  return new Gateway(config, { clock: systemClock, certTiming: DEFAULT_CERT_TIMING, logger: new CountingLogger(logger, metrics), ...deps }, metrics, stdout);
}
