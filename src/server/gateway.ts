import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { TIMEOUTS, type GatewayConfig } from "../config/gateway-config.js";
import { SiteTable } from "../config/site-table.js";
import { systemClock, type Clock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import { NotebookProxy } from "../proxy/notebook-proxy.js";
import { CertManager, DEFAULT_CERT_TIMING, type CertManagerTiming } from "../tls/cert-manager.js";
import { FileCertStore } from "../tls/cert-store.js";
import { LocalCaIssuer } from "../tls/local-ca-issuer.js";
import { SniContexts } from "../tls/sni-context.js";
import { createHttpListener } from "./http-listener.js";
import { createHttpsListener } from "./https-listener.js";
import { drain, listen } from "./lifecycle.js";

export interface GatewayDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly certTiming: CertManagerTiming;
}

/** The ports actually bound (listen.https: 0 picks one). */
export interface BoundPorts {
  readonly https: number;
  readonly http: number | null;
}

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
 */
export class Gateway {
  private readonly sni = new SniContexts();
  private readonly proxy: NotebookProxy;
  private readonly upgraded = new Set<Duplex>();
  private generation: Generation;
  private httpsServer: HttpsServer | undefined;
  private httpServer: HttpServer | undefined;
  private boundHttpsPort = 0;

  constructor(
    config: GatewayConfig,
    private readonly deps: GatewayDeps,
  ) {
    this.proxy = new NotebookProxy(deps.logger);
    this.generation = this.makeGeneration(config);
  }

  async start(): Promise<BoundPorts> {
    const { config } = this.generation;
    await this.generation.certs.start();
    this.httpsServer = createHttpsListener(this.sni, () => this.generation.sites, this.proxy, this.upgraded, this.deps.logger);
    this.boundHttpsPort = await listen(this.httpsServer, config.listen.httpsPort, config.listen.address, "listen.https");
    let httpPort: number | null = null;
    if (config.listen.httpPort !== null) {
      this.httpServer = createHttpListener(() => this.generation.store, () => this.generation.sites, () => this.boundHttpsPort, this.deps.logger);
      httpPort = await listen(this.httpServer, config.listen.httpPort, config.listen.address, "listen.http");
    }
    return { https: this.boundHttpsPort, http: httpPort };
  }

  /** Applies a new, already validated config; on failure the old one keeps serving. */
  async reload(config: GatewayConfig): Promise<void> {
    const old = this.generation;
    const next = this.makeGeneration(config);
    try {
      await next.certs.start();
    } catch (err) {
      next.certs.stop();
      throw err;
    }
    this.generation = next;
    old.certs.stop();
    this.sni.retain(new Set(config.sites.flatMap((s) => s.hosts)));
    const restartNeeded = ["listen", "storageDir"].filter((key) => JSON.stringify(old.config[key as keyof GatewayConfig]) !== JSON.stringify(config[key as keyof GatewayConfig]));
    if (restartNeeded.length > 0) this.deps.logger.warn("gateway.restart_needed", { changed: restartNeeded, hint: "listen and storage changes apply after a restart" });
  }

  status(): ReturnType<CertManager["status"]> {
    return this.generation.certs.status();
  }

  /** Drains requests, closes WebSockets, stops timers. Safe after a partial start. */
  async stop(): Promise<void> {
    await Promise.all([
      this.httpsServer ? drain(this.httpsServer, this.upgraded, TIMEOUTS.drainMs) : undefined,
      this.httpServer ? drain(this.httpServer, new Set(), TIMEOUTS.drainMs) : undefined,
    ]);
    this.generation.certs.stop();
    this.proxy.close();
  }

  private makeGeneration(config: GatewayConfig): Generation {
    const store = new FileCertStore(config.storageDir);
    const localCa = new LocalCaIssuer(store, this.deps.clock, this.deps.logger);
    const certs = new CertManager(config.sites, store, localCa, this.sni, this.deps.clock, this.deps.logger, this.deps.certTiming);
    return { config, sites: new SiteTable(config.sites), store, certs };
  }
}

/** The composition root. */
export function createGateway(config: GatewayConfig, logger: Logger, deps: Partial<GatewayDeps> = {}): Gateway {
  return new Gateway(config, { clock: systemClock, certTiming: DEFAULT_CERT_TIMING, logger, ...deps });
}
