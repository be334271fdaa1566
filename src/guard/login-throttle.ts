import { readFileSync } from "node:fs";
import type { SiteConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { writeFileAtomic } from "../platform/file-system.js";
import { describeError, type Logger } from "../platform/logger.js";
import { ALL_ADDRESSES, canonicalClientAddress, readLoginUnlocks, type LoginUnlocks } from "./login-unlocks.js";

/**
 * A login attempt that must wait: answer 429 with Retry-After (503 for "unavailable": a worker's
 * primary could not count it), never forward it.
 */
export interface LoginLockout {
  readonly retryAfterS: number;
  readonly scope: "address" | "site" | "unavailable";
}

/**
 * What the HTTPS listener and the proxy ask of the login guard: the LoginThrottle itself, or in a
 * worker (`workers:` 2 or more) the primary's throttle over IPC, so that every worker counts
 * against the same limit.
 */
export interface LoginGate {
  check(site: SiteConfig, address: string): LoginLockout | null | Promise<LoginLockout | null>;
  settle(site: SiteConfig, address: string, clientLeftFirst: boolean): void;
  record(site: SiteConfig, address: string, status: number): void;
}

/** Whether a request is a login attempt the guard counts. */
export function isLoginAttempt(site: SiteConfig, method: string | undefined, url: string | undefined): boolean {
  return method === "POST" && site.loginGuard.paths.includes((url ?? "").split("?")[0] ?? "");
}

/** Retry-After when only attempts still in flight fill the limit. */
const IN_FLIGHT_RETRY_S = 5;

/** Failure times (ms) per site, then per client address. */
type FailureLog = Record<string, Record<string, number[]>>;

/**
 * Counts failed logins per client address and per site in a sliding window, kept in storage so
 * a reload or a restart does not reset them. Jupyter answers a wrong password with 401 (the
 * login page again) and a right one with a redirect, so the response status tells them apart.
 */
export class LoginThrottle implements LoginGate {
  private failures: FailureLog;
  /** Attempts let through and not answered yet, per site and address: they count as failures until answered. */
  private readonly pending = new Map<string, Map<string, number>>();
  /** null until first read, so the requests found at start are not announced as new. */
  private unlocks: LoginUnlocks | null = null;

  constructor(
    private readonly statePath: string,
    /** `gateway unlock`'s requests (login-unlocks.ts): read here and again by rereadUnlocks(). */
    readonly unlocksPath: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    try {
      this.failures = JSON.parse(readFileSync(statePath, "utf8")) as FailureLog;
    } catch {
      this.failures = {};
    }
    this.rereadUnlocks();
  }

  /**
   * Reads `gateway unlock`'s requests again (the gateway watches the file): failures of an
   * unlocked address up to the request's time no longer count, in memory and, from the next
   * write, in storage.
   */
  rereadUnlocks(): void {
    let unlocks: LoginUnlocks;
    try {
      unlocks = readLoginUnlocks(this.unlocksPath);
    } catch (err) {
      this.logger.error("guard.login_unlocks_unreadable", { path: this.unlocksPath, error: describeError(err), hint: "run gateway unlock again as the gateway's user" });
      return;
    }
    for (const [address, at] of Object.entries(this.unlocks ? unlocks : {})) {
      if (this.unlocks?.[address] !== at) this.logger.info("guard.login_unlocked", { client: address === ALL_ADDRESSES ? "all" : address, requested_at: at });
    }
    this.unlocks = unlocks;
  }

  /**
   * Before forwarding a login attempt: null to let it through, or how long to wait. An attempt let
   * through counts as a failure until it is answered, so a burst of concurrent guesses gets no
   * more through than one at a time would; the caller reports its end with `settle`.
   */
  check(site: SiteConfig, address: string): LoginLockout | null {
    const { maxFailuresPerAddress, maxFailuresTotal } = site.loginGuard;
    const bySite = this.recent(site);
    const inFlight = this.pending.get(site.hosts[0] ?? "") ?? new Map<string, number>();
    const mine = bySite[address] ?? [];
    if (mine.length + (inFlight.get(address) ?? 0) >= maxFailuresPerAddress) return { retryAfterS: this.secondsUntilFree(site, mine, maxFailuresPerAddress), scope: "address" };
    const all = Object.values(bySite).flat().sort((a, b) => a - b);
    const allInFlight = [...inFlight.values()].reduce((n, c) => n + c, 0);
    if (all.length + allInFlight >= maxFailuresTotal) return { retryAfterS: this.secondsUntilFree(site, all, maxFailuresTotal), scope: "site" };
    inFlight.set(address, (inFlight.get(address) ?? 0) + 1);
    this.pending.set(site.hosts[0] ?? "", inFlight);
    return null;
  }

  /**
   * An attempt `check` let through has ended. A client that left before any answer counts as a
   * failure: the notebook may have checked the password anyway (each guess costs it ~200 ms).
   */
  settle(site: SiteConfig, address: string, clientLeftFirst: boolean): void {
    const inFlight = this.pending.get(site.hosts[0] ?? "");
    const count = inFlight?.get(address) ?? 0;
    if (count <= 1) inFlight?.delete(address);
    else inFlight?.set(address, count - 1);
    if (clientLeftFirst) this.record(site, address, 401);
  }

  /** After the notebook answered a login attempt. */
  record(site: SiteConfig, address: string, status: number): void {
    const key = site.hosts[0] ?? "";
    const bySite = this.recent(site);
    if (status >= 300 && status < 400) {
      if (!bySite[address]) return;
      delete bySite[address];
    } else if (status === 200 || status === 401 || status === 403) {
      const mine = [...(bySite[address] ?? []), this.clock.now().getTime()];
      bySite[address] = mine;
      if (mine.length === site.loginGuard.maxFailuresPerAddress) {
        this.logger.warn("guard.login_locked", { site: key, client: address, failures: mine.length, window_s: site.loginGuard.windowMs / 1000 });
      }
    } else return;
    this.failures[key] = bySite;
    void writeFileAtomic(this.statePath, JSON.stringify(this.failures), 0o600).catch((err: unknown) =>
      this.logger.error("guard.login_state_unwritable", { error: describeError(err) }),
    );
  }

  /** The site's failures still inside the window and after any unlock of their address (others are dropped). */
  private recent(site: SiteConfig): Record<string, number[]> {
    const windowStart = this.clock.now().getTime() - site.loginGuard.windowMs;
    const unlocks = this.unlocks ?? {};
    const unlockedAll = Date.parse(unlocks[ALL_ADDRESSES] ?? "") || 0;
    const bySite: Record<string, number[]> = {};
    for (const [address, times] of Object.entries(this.failures[site.hosts[0] ?? ""] ?? {})) {
      const since = Math.max(windowStart, unlockedAll, Date.parse(unlocks[canonicalClientAddress(address)] ?? "") || 0);
      const kept = times.filter((t) => t > since);
      if (kept.length > 0) bySite[address] = kept;
    }
    return bySite;
  }

  /**
   * Seconds until fewer than `limit` of the sorted `times` remain in the window; when attempts
   * still in flight make up the rest, a few seconds (they are answered in about a second).
   */
  private secondsUntilFree(site: SiteConfig, times: number[], limit: number): number {
    if (times.length < limit) return IN_FLIGHT_RETRY_S;
    const oldestThatMustExpire = times[times.length - limit] ?? this.clock.now().getTime();
    return Math.max(1, Math.ceil((oldestThatMustExpire + site.loginGuard.windowMs - this.clock.now().getTime()) / 1000));
  }
}
