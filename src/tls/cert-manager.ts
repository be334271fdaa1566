import { unwatchFile, watchFile } from "node:fs";
import type { SiteConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, type Logger } from "../platform/logger.js";
import { readCertificateFiles, type CertificateBundle } from "./certificate-bundle.js";
import type { FileCertStore, RenewalState } from "./cert-store.js";
import type { Issuer } from "./issuer.js";
import type { IssuingLock } from "./issuing-lock.js";
import { renewalTime } from "./renewal-policy.js";

/** How often the manager looks for due certificates and changed files. */
export interface CertManagerTiming {
  /** Interval between renewal checks in `serve`; jittered by ±1/12. Default 12 hours. */
  readonly renewCheckIntervalMs: number;
  /** First retry after a site could not get any certificate; doubles up to the check interval. Default 30 s. */
  readonly obtainRetryMs: number;
  /** Poll interval for certificate files (user-managed, or renewed by another process). Default 2 s. */
  readonly fileWatchIntervalMs: number;
}

export const DEFAULT_CERT_TIMING: CertManagerTiming = { renewCheckIntervalMs: 12 * 3600_000, obtainRetryMs: 30_000, fileWatchIntervalMs: 2000 };

/** The issuers certificates come from, by `tls:` kind. */
export interface Issuers {
  readonly internal: Issuer;
  readonly acme: Issuer;
}

/** What happened to one site in a renewal pass. */
export type RenewOutcome = { readonly site: string } & (
  | { readonly kind: "fresh"; readonly renewAt: Date }
  | { readonly kind: "renewed"; readonly bundle: CertificateBundle }
  | { readonly kind: "renewed-elsewhere" }
  | { readonly kind: "postponed"; readonly until: Date }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "user-managed" }
);

export interface RenewOptions {
  /** Renew even when not due. */
  readonly force?: boolean;
  /** Order for real, whether due or not (as certbot's --dry-run), but keep nothing: the live certificate and the state stay as they are. */
  readonly dryRun?: boolean;
  /**
   * Runs after the lock, right before a site's order: `gateway renew` starts its challenge
   * responder here, so a pass with nothing due binds no port. A throw fails that site.
   */
  readonly beforeOrder?: (site: SiteConfig) => Promise<void>;
  /** `serve`: when its next pass runs. A failure logs it (retry_at, retry_in_s) and keeps it in the state. */
  readonly nextAttempt?: Date;
}

/** What `gateway status` shows per site. */
export interface CertificateStatus {
  readonly site: string;
  readonly source: SiteConfig["tls"]["kind"];
  readonly bundle: CertificateBundle | null;
  readonly renewAt: Date | null;
  readonly state: RenewalState;
  /** The CA that issued `bundle` ("local CA" or an ACME directory URL), when the state recorded it. */
  readonly issuedBy: string | null;
}

/**
 * Keeps every site's certificate current: loads or issues at start, renews when due (ARI window
 * when the CA offers one, else the lifetime policy), reloads files that change (user-managed
 * files, or a bundle renewed by cron's `gateway renew`). Renewal is check → lock → check again,
 * so `serve` and `renew` never order twice; a failure keeps the certificate that is serving.
 */
export class CertManager {
  private readonly serving = new Map<SiteConfig, CertificateBundle>();
  /** Which CA issued what `serving` holds, where the state recorded it. */
  private readonly servingIssuedBy = new Map<SiteConfig, string>();
  /** ACME sites served with a stand-in from the local CA until their first order succeeds. */
  private readonly temporary = new Set<SiteConfig>();
  private readonly stopping = new AbortController();
  private readonly watched: string[] = [];

  constructor(
    private readonly sites: readonly SiteConfig[],
    private readonly store: FileCertStore,
    private readonly issuers: Issuers,
    /** Called whenever a site's certificate changes; `serve` swaps its TLS context here. */
    private readonly onCertificate: (site: SiteConfig, bundle: CertificateBundle) => void,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly timing: CertManagerTiming = DEFAULT_CERT_TIMING,
  ) {}

  /**
   * `serve`: makes every site servable now. An ACME site without a certificate yet is served with
   * a temporary one from the local CA until `startRenewing()` obtains the real one.
   */
  async start(): Promise<void> {
    await this.store.init();
    for (const site of this.sites) {
      const name = primaryName(site);
      if (site.tls.kind === "files") {
        await this.reloadFiles(site);
        if (!this.serving.has(site)) throw new GatewayError("tls.no_certificate", `site ${name}: no usable certificate; fix the files named in tls: and start again`);
        this.watch(site, [site.tls.certFile, site.tls.keyFile], () => this.reloadFiles(site));
        continue;
      }
      // Local issuance takes milliseconds: do it now when missing, due, or short of a name.
      if (site.tls.kind === "internal") await this.renewSite(site, {});
      const stored = await this.loadStored(site);
      if (stored && !this.serving.has(site)) this.serve(site, stored, await this.recordedIssuer(site, stored));
      else if (!stored) {
        const standIn = await this.issuers.internal.obtain({ hosts: site.hosts, replacing: null });
        this.serve(site, standIn, standIn.issuedBy);
        this.temporary.add(site);
        this.logger.warn("cert.temporary", { site: name, reason: "no certificate yet; serving a temporary one from the local CA while ordering" });
      }
      this.watch(site, [this.store.bundlePath(name)], () => this.reloadStored(site));
    }
  }

  /** `serve`: obtains what is missing, then checks renewals every interval (with jitter). */
  startRenewing(): void {
    // renewSite turns every failure into a logged outcome; what could still reach here is a bug in the loop itself.
    this.renewLoop().catch((err: unknown) => this.logger.error("cert.renew_loop_failed", { error: describeError(err), hint: "in-process renewals stopped; cron's gateway renew still renews, restart the gateway to resume them" }));
  }

  stop(): void {
    this.stopping.abort();
    for (const path of this.watched) unwatchFile(path);
  }

  /** SIGHUP: re-read files and stored certificates. */
  async reload(): Promise<void> {
    for (const site of this.sites) await (site.tls.kind === "files" ? this.reloadFiles(site) : this.reloadStored(site));
  }

  /** One renewal pass over every site: what `gateway renew` runs and `serve` runs on its timer. */
  async renewDue(options: RenewOptions = {}): Promise<RenewOutcome[]> {
    const outcomes: RenewOutcome[] = [];
    for (const site of this.sites) outcomes.push(await this.renewSite(site, options));
    return outcomes;
  }

  /** The certificates being served right now, per site's first name. */
  servingCertificates(): Array<[string, CertificateBundle]> {
    return [...this.serving].map(([site, bundle]) => [primaryName(site), bundle]);
  }

  /** Which CA issued each certificate being served ("local CA" or an ACME directory URL), where known, per site's first name. */
  servingIssuers(): Array<[string, string]> {
    return [...this.servingIssuedBy].map(([site, issuedBy]) => [primaryName(site), issuedBy]);
  }

  async status(): Promise<CertificateStatus[]> {
    return Promise.all(
      this.sites.map(async (site) => {
        const bundle = site.tls.kind === "files" ? await this.readFiles(site).catch(() => null) : await this.loadStored(site);
        // An unreadable state file is shown as the site's last error (with its fix), not a crash.
        const state: RenewalState = await this.store.loadState(primaryName(site)).catch((err: unknown) => ({ lastError: describeError(err) }));
        const ari = bundle && state.ari?.fingerprint === bundle.fingerprint ? new Date(state.ari.chosen) : null;
        const issuedBy = bundle && state.issued?.fingerprint === bundle.fingerprint ? state.issued.by : null;
        return { site: primaryName(site), source: site.tls.kind, bundle, renewAt: bundle && site.tls.kind !== "files" ? (ari ?? renewalTime(bundle)) : null, state, issuedBy };
      }),
    );
  }

  private async renewSite(site: SiteConfig, options: RenewOptions): Promise<RenewOutcome> {
    const name = primaryName(site);
    if (site.tls.kind === "files") return { site: name, kind: "user-managed" };
    const current = await this.loadStored(site);
    const now = this.clock.now();
    const force = options.force || options.dryRun;
    let state: RenewalState = {};
    let lock: IssuingLock | undefined;
    // Every failure on the way (state file, lock wait, order, store) ends as a "failed" outcome:
    // the serving certificate stays, and `serve`'s loop tries again later.
    try {
      state = await this.store.loadState(name);
      if (!force) {
        if (state.retryAfter && now < new Date(state.retryAfter)) return { site: name, kind: "postponed", until: new Date(state.retryAfter) };
        const renewAt = await this.renewAt(site, current, state);
        if (renewAt && now < renewAt) return { site: name, kind: "fresh", renewAt };
      }
      lock = await this.store.lock(name, {
        waiting: (holder, path) => this.logger.info("cert.lock_waiting", { site: name, holder, lock: path, reason: "another gateway process is ordering this certificate; waiting for it, then looking again" }),
        tookOver: (holder, heartbeatAgeMs, path) => this.logger.warn("cert.lock_taken_over", { site: name, holder, lock: path, heartbeat_age_s: Math.round(heartbeatAgeMs / 1000), reason: "its holder stopped refreshing the lock (killed, or frozen)" }),
      });
      const again = await this.loadStored(site);
      // Replaced while this process waited for the lock: that order was this one's, --force or not.
      if (!options.dryRun && again && again.fingerprint !== current?.fingerprint) {
        if (this.serving.get(site)?.fingerprint !== again.fingerprint) this.serve(site, again, await this.recordedIssuer(site, again));
        return { site: name, kind: "renewed-elsewhere" };
      }
      const issuer = this.issuers[site.tls.kind];
      await options.beforeOrder?.(site);
      this.logger.info("cert.obtaining", { site: name, issuer: issuer.description, replacing: current?.fingerprint ?? null, dry_run: options.dryRun ?? false });
      const bundle = await issuer.obtain({ hosts: site.hosts, replacing: current, profile: site.acmeProfile });
      if (options.dryRun) return { site: name, kind: "renewed", bundle };
      await lock.assertHeld();
      await this.store.save(name, bundle);
      await this.store.saveState(name, { lastAttempt: now.toISOString(), issued: { by: bundle.issuedBy, fingerprint: bundle.fingerprint } });
      this.serve(site, bundle, bundle.issuedBy);
      this.logger.info("cert.renewed", { site: name, issuer: bundle.issuer, issued_by: bundle.issuedBy, not_after: bundle.notAfter.toISOString() });
      return { site: name, kind: "renewed", bundle };
    } catch (err) {
      const error = describeError(err);
      const retryAfter = (err as { retryAfter?: Date }).retryAfter;
      const details = err instanceof GatewayError ? err.details : undefined;
      // The CA's Retry-After postpones past serve's next pass; the first pass after it orders.
      const retryAt = retryAfter && (!options.nextAttempt || retryAfter > options.nextAttempt) ? retryAfter : options.nextAttempt;
      const retry = retryAt ? { retry_at: retryAt.toISOString(), retry_in_s: Math.round((retryAt.getTime() - now.getTime()) / 1000) } : {};
      this.logger.error("cert.renew_failed", { site: name, error, keeps_serving: current?.fingerprint ?? null, ...retry, ...(details ? { details } : {}) });
      if (!options.dryRun) {
        await this.store
          // nextAttempt is replaced, never inherited: a failure under cron's renew has no next pass of serve's.
          .saveState(name, { ...state, lastAttempt: now.toISOString(), lastError: error, ...(retryAfter ? { retryAfter: retryAfter.toISOString() } : {}), nextAttempt: retryAt?.toISOString() })
          .catch((saveErr: unknown) => this.logger.error("cert.state_unwritable", { site: name, error: describeError(saveErr), hint: "gateway status will not show this failure" }));
      }
      return { site: name, kind: "failed", error };
    } finally {
      await lock?.release().catch((releaseErr: unknown) => this.logger.error("cert.unlock_failed", { site: name, error: describeError(releaseErr), hint: "renewals of this site take the lock over once its heartbeat is 15 s old" }));
    }
  }

  /**
   * When `current` should be renewed: null when it must be obtained now (missing, or not
   * covering the site's names); the CA's ARI window when offered (a random moment in it, kept
   * in the state so every process agrees); otherwise the lifetime policy.
   */
  private async renewAt(site: SiteConfig, current: CertificateBundle | null, state: RenewalState): Promise<Date | null> {
    if (!current || !site.hosts.every((h) => current.names.includes(h))) return null;
    const now = this.clock.now();
    if (state.ari?.fingerprint === current.fingerprint && now < new Date(state.ari.fetchAgainAfter)) return new Date(state.ari.chosen);
    const issuer = this.issuers[site.tls.kind as "acme" | "internal"];
    try {
      const window = await issuer.renewalWindow(current, state.issued?.fingerprint === current.fingerprint ? state.issued.by : null);
      if (window) {
        const chosen = new Date(window.start.getTime() + Math.random() * (window.end.getTime() - window.start.getTime()));
        const ari = { start: window.start.toISOString(), end: window.end.toISOString(), chosen: chosen.toISOString(), fetchAgainAfter: window.fetchAgainAfter.toISOString(), fingerprint: current.fingerprint };
        await this.store.saveState(primaryName(site), { ...state, ari });
        return chosen;
      }
    } catch (err) {
      this.logger.warn("cert.ari_failed", { site: primaryName(site), error: describeError(err), fallback: "lifetime policy" });
    }
    return renewalTime(current);
  }

  private async renewLoop(): Promise<void> {
    let retryMs = this.timing.obtainRetryMs;
    while (!this.stopping.signal.aborted) {
      // The next pass is fixed before this one, so a failure can say when it is retried: soon
      // (doubling) while a site still serves a temporary certificate, else at the next check.
      const retrying = this.temporary.size > 0;
      const intervalMs = this.timing.renewCheckIntervalMs;
      const waitMs = retrying ? retryMs : intervalMs + (Math.random() - 0.5) * (intervalMs / 6);
      const nextPass = new Date(this.clock.now().getTime() + waitMs);
      await this.renewDue({ nextAttempt: nextPass });
      retryMs = retrying ? Math.min(retryMs * 2, intervalMs) : this.timing.obtainRetryMs;
      try {
        await this.clock.sleep(Math.max(0, nextPass.getTime() - this.clock.now().getTime()), this.stopping.signal);
      } catch {
        return; // stop()
      }
    }
  }

  private serve(site: SiteConfig, bundle: CertificateBundle, issuedBy: string | null): void {
    this.serving.set(site, bundle);
    if (issuedBy) this.servingIssuedBy.set(site, issuedBy);
    else this.servingIssuedBy.delete(site);
    this.temporary.delete(site);
    this.onCertificate(site, bundle);
    this.logger.info("cert.loaded", { site: primaryName(site), source: site.tls.kind, issuer: bundle.issuer, not_after: bundle.notAfter.toISOString(), fingerprint: bundle.fingerprint });
  }

  private async loadStored(site: SiteConfig): Promise<CertificateBundle | null> {
    try {
      return await this.store.load(primaryName(site));
    } catch (err) {
      this.logger.error("cert.store_unreadable", { site: primaryName(site), error: describeError(err) });
      return null;
    }
  }

  private async reloadStored(site: SiteConfig): Promise<void> {
    const stored = await this.loadStored(site);
    if (stored && stored.fingerprint !== this.serving.get(site)?.fingerprint) this.serve(site, stored, await this.recordedIssuer(site, stored));
  }

  /** The CA the state says issued `bundle` (another process may have installed it), or null. */
  private async recordedIssuer(site: SiteConfig, bundle: CertificateBundle): Promise<string | null> {
    // An unreadable state file is reported by status and the next renewal; here it only leaves the CA unknown.
    const issued = (await this.store.loadState(primaryName(site)).catch(() => ({}) as RenewalState)).issued;
    return issued?.fingerprint === bundle.fingerprint ? issued.by : null;
  }

  private async readFiles(site: SiteConfig): Promise<CertificateBundle> {
    if (site.tls.kind !== "files") throw new Error("readFiles on a site without tls files");
    return readCertificateFiles(site.tls.certFile, site.tls.keyFile);
  }

  private async reloadFiles(site: SiteConfig): Promise<void> {
    const current = this.serving.get(site);
    try {
      const bundle = await this.readFiles(site);
      if (bundle.fingerprint !== current?.fingerprint) this.serve(site, bundle, null);
    } catch (err) {
      this.logger.error("cert.load_failed", { site: primaryName(site), error: describeError(err), keeps_serving: current?.fingerprint ?? null });
    }
  }

  private watch(site: SiteConfig, paths: string[], reload: () => Promise<void>): void {
    let pending: NodeJS.Timeout | undefined;
    const onChange = (): void => {
      clearTimeout(pending);
      // cert and key usually change together: wait for both before loading.
      pending = setTimeout(() => reload().catch((err: unknown) => this.logger.error("cert.load_failed", { site: primaryName(site), error: describeError(err), keeps_serving: this.serving.get(site)?.fingerprint ?? null })), 250);
    };
    for (const path of paths) {
      watchFile(path, { interval: this.timing.fileWatchIntervalMs, persistent: false }, onChange);
      this.watched.push(path);
    }
  }
}

/** A site's first name names its files in storage. */
export function primaryName(site: SiteConfig): string {
  return site.hosts[0] as string;
}
