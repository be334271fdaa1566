import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import type { SiteConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, type Logger } from "../platform/logger.js";
import { parseBundle, type CertificateBundle } from "./certificate-bundle.js";
import type { FileCertStore } from "./cert-store.js";
import type { LocalCaIssuer } from "./local-ca-issuer.js";
import { isRenewalDue, renewalTime } from "./renewal-policy.js";
import type { SniContexts } from "./sni-context.js";

/** How often the manager looks for due certificates and changed files. */
export interface CertManagerTiming {
  /** Interval between renewal checks. Default 1 hour (local issuance costs milliseconds). */
  readonly renewCheckIntervalMs: number;
  /** Poll interval for user-managed cert/key files. Default 2 s. */
  readonly fileWatchIntervalMs: number;
}

export const DEFAULT_CERT_TIMING: CertManagerTiming = { renewCheckIntervalMs: 3600_000, fileWatchIntervalMs: 2000 };

/** What `gateway status` shows per site. */
export interface CertificateState {
  readonly site: string;
  readonly bundle: CertificateBundle | null;
  readonly lastError: string | null;
}

/**
 * Keeps every site's certificate current in SniContexts: loads or issues at start, renews
 * `tls: internal` leaves when due, reloads user-managed files when they change. A failure keeps
 * the certificate that is serving and is logged with the reason.
 */
export class CertManager {
  private readonly states = new Map<SiteConfig, CertificateState>();
  private readonly stopping = new AbortController();
  private readonly watched: string[] = [];

  constructor(
    private readonly sites: readonly SiteConfig[],
    private readonly store: FileCertStore,
    private readonly localCa: LocalCaIssuer,
    private readonly sni: SniContexts,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly timing: CertManagerTiming = DEFAULT_CERT_TIMING,
  ) {}

  /** Makes every site servable; throws when a site has no usable certificate at all. */
  async start(): Promise<void> {
    await this.store.init();
    for (const site of this.sites) {
      if (site.tls.kind === "acme") {
        throw new GatewayError(
          "tls.acme_unavailable",
          `site ${site.hosts[0]} (${site.position}): tls: acme is not available in this version yet; use tls: internal, or tls: {cert: FILE, key: FILE} with certbot's files`,
        );
      }
    }
    for (const site of this.sites) {
      await this.refresh(site);
      if (!this.states.get(site)?.bundle) throw new GatewayError("tls.no_certificate", `site ${site.hosts[0]}: no certificate to serve: ${this.states.get(site)?.lastError}`);
      if (site.tls.kind === "files") this.watch(site, [site.tls.certFile, site.tls.keyFile]);
    }
    void this.renewLoop();
  }

  stop(): void {
    this.stopping.abort();
    for (const path of this.watched) unwatchFile(path);
  }

  /** Re-reads user-managed files and renews what is due (SIGHUP). */
  async reload(): Promise<void> {
    for (const site of this.sites) await this.refresh(site);
  }

  status(): CertificateState[] {
    return [...this.states.values()];
  }

  private async renewLoop(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      try {
        await this.clock.sleep(this.timing.renewCheckIntervalMs, signal);
      } catch {
        return; // aborted by stop()
      }
      for (const site of this.sites) if (site.tls.kind === "internal") await this.refresh(site);
    }
  }

  private watch(site: SiteConfig, paths: string[]): void {
    let pending: NodeJS.Timeout | undefined;
    const onChange = (): void => {
      clearTimeout(pending);
      // cert and key usually change together: wait for both before loading.
      pending = setTimeout(() => void this.refresh(site), 250);
    };
    for (const path of paths) {
      watchFile(path, { interval: this.timing.fileWatchIntervalMs, persistent: false }, onChange);
      this.watched.push(path);
    }
  }

  /** Loads (and for `tls: internal`, issues when missing or due) the site's certificate, then serves it. */
  private async refresh(site: SiteConfig): Promise<void> {
    const name = site.hosts[0] as string;
    const current = this.states.get(site)?.bundle ?? null;
    try {
      const bundle = await this.obtain(site, name);
      if (bundle.fingerprint !== current?.fingerprint) {
        this.sni.set(site.hosts, bundle, site === this.sites[0]);
        this.logger.info("cert.loaded", { site: name, source: site.tls.kind, not_after: bundle.notAfter.toISOString(), renew_at: renewalTime(bundle).toISOString(), fingerprint: bundle.fingerprint });
      }
      this.states.set(site, { site: name, bundle, lastError: null });
    } catch (err) {
      const reason = describeError(err);
      this.logger.error("cert.load_failed", { site: name, source: site.tls.kind, error: reason, keeps_serving: current?.fingerprint ?? null });
      this.states.set(site, { site: name, bundle: current, lastError: reason });
    }
  }

  private async obtain(site: SiteConfig, name: string): Promise<CertificateBundle> {
    const tls = site.tls;
    if (tls.kind === "files") {
      const [certPem, keyPem] = await Promise.all([readFile(tls.certFile, "utf8"), readFile(tls.keyFile, "utf8")]);
      return parseBundle(certPem, keyPem, `${tls.certFile} + ${tls.keyFile}`);
    }
    const stored = await this.store.load(name);
    if (stored && !isRenewalDue(stored, this.clock.now()) && this.coversHosts(stored, site)) return stored;
    const issued = await this.localCa.issue(site.hosts);
    await this.store.save(name, issued);
    this.logger.info("cert.issued", { site: name, issuer: "local CA", not_after: issued.notAfter.toISOString() });
    return issued;
  }

  private coversHosts(bundle: CertificateBundle, site: SiteConfig): boolean {
    return site.hosts.every((host) => bundle.names.includes(host));
  }
}
