import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import type { SiteConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { writeFileAtomic } from "../platform/file-system.js";
import { describeError, type Logger } from "../platform/logger.js";
import { SshTunnel, tunnelLocalPort, type TunnelState } from "./ssh-tunnel.js";

/** What a GET of the notebook's /api/kernels without credentials says about it. */
export type NotebookProbe =
  /** 403: the API needs a login. */
  | "protected"
  /** 200: anyone can start kernels — an open shell on the workstation. */
  | "unprotected"
  /** Answered, but not like a Jupyter server. */
  | "not-a-notebook"
  | "unreachable"
  | "unknown";

/** What the gateway knows about one site's upstream. */
export interface UpstreamHealth {
  /** null when the site has no `tunnel:`. */
  readonly tunnel: TunnelState | null;
  readonly notebook: NotebookProbe;
  /** The probe's error code when the notebook was unreachable (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, …). */
  readonly probeError: string | null;
  readonly checkedAt: Date | null;
  /**
   * True while the last probe's "protected" (password demanded) still holds: nothing suggested a
   * restart since. Requests pass only then (or when the site allows an unprotected notebook).
   */
  readonly proven: boolean;
}

/** `health` as the admin endpoint's /status shows it: snake_case keys, as in gateway.yaml and the logs. */
export function upstreamHealthJson(health: UpstreamHealth): Record<string, unknown> {
  const t = health.tunnel;
  return {
    tunnel: t && {
      kind: t.kind,
      attempt: "attempt" in t ? t.attempt : null,
      since: "since" in t ? t.since : null,
      pid: "pid" in t ? t.pid : null,
      next_attempt_at: "nextAttemptAt" in t ? t.nextAttemptAt : null,
      last_error: "lastError" in t ? t.lastError : null,
    },
    notebook: health.notebook,
    probe_error: health.probeError,
    checked_at: health.checkedAt,
    proven: health.proven,
  };
}

/**
 * How often the notebook is probed for `status` (requests probe it themselves when needed). Each
 * probe rewrites the site's record, so its `updatedAt` is serve's heartbeat.
 */
export const PROBE_INTERVAL_MS = 30_000;
/** `check` and `status` give a notebook this long to answer a probe. */
const PROBE_TIMEOUT_MS = 5_000;
/** A probe that found the notebook open or not Jupyter answers the requests of this long without asking it again. */
const REFUSAL_REUSE_MS = 1_000;
/** Probes in a row that an invalidation overtook before the gate gives up and says the notebook is restarting. */
const PROBE_ATTEMPTS = 3;

/** Where `serve` leaves a site's upstream health for `gateway status`. */
export function upstreamStatePath(runDir: string, site: SiteConfig): string {
  return join(runDir, `${(site.hosts[0] ?? "site").replace(/[^a-z0-9.-]/gi, "_")}.json`);
}

/** One watch per site and upstream settings: unchanged ones keep their tunnel across a reload. */
function upstreamKey(site: SiteConfig): string {
  return JSON.stringify([site.hosts, site.upstream.origin, site.tunnel, site.allowUnprotectedUpstream]);
}

/** What one probe found, and the error when it found nothing. */
interface ProbeResult {
  readonly notebook: NotebookProbe;
  readonly error: string | null;
}

/** Asks the notebook's API (under its base URL), without credentials, whether it demands a password. */
export async function probeNotebook(site: SiteConfig, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const upstream = site.upstream;
  try {
    // A fresh connection every time (reset): a kept-alive one may lead to the notebook before its restart.
    const res = await request(new URL(`${site.baseUrl}api/kernels`, upstream), { method: "GET", reset: true, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: { host: upstream.host } });
    const body = await res.body.text();
    if (res.statusCode === 403 || res.statusCode === 401) return { notebook: "protected", error: null };
    if (res.statusCode === 200 && body.trim().startsWith("[")) return { notebook: "unprotected", error: null };
    return { notebook: "not-a-notebook", error: null };
  } catch (err) {
    return { notebook: "unreachable", error: (err as NodeJS.ErrnoException).code ?? ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? "ECONNREFUSED" };
  }
}

/** Jupyter's API paths (after its base URL) that hand out kernels, files and terminals: open to anyone only on a notebook without a password. */
const SHELL_API = /^api\/(?:kernels|sessions|terminals|contents)(?:[/?]|$)/;

/**
 * A GET of the notebook's shell-granting API that carries no credentials (no cookie, no
 * Authorization header, no token in the query): a 2xx to it means the notebook has no password.
 * Only GET, as the probe asks: Jupyter answers OPTIONS (CORS preflights) with 200 without a login.
 */
export function isUnauthenticatedApiCall(site: SiteConfig, method: string | undefined, url: string | undefined, headers: Readonly<Record<string, unknown>>): boolean {
  const target = url ?? "";
  return method === "GET" && target.startsWith(site.baseUrl) && SHELL_API.test(target.slice(site.baseUrl.length)) && headers.cookie === undefined && headers.authorization === undefined && !target.includes("token=");
}

interface Watched {
  readonly key: string;
  site: SiteConfig;
  readonly tunnel: SshTunnel | null;
  notebook: NotebookProbe;
  probeError: string | null;
  checkedAt: Date | null;
  /** True while `notebook` is "protected" and still holds: set by a probe, cleared when the upstream may have restarted. */
  proven: boolean;
  /** When a probe last found the notebook open or not Jupyter; null after an invalidation. */
  refusedAt: Date | null;
  /** Bumped at every invalidation, so a probe that started before one cannot prove the new notebook. */
  epoch: number;
  /** The probe in flight, shared by every request that waits for it. */
  probing: Promise<void> | null;
}

/**
 * Keeps each site's tunnel up and knows whether its notebook answers and demands a password.
 * Tunnels survive a config reload when their settings did not change.
 */
export class UpstreamMonitor {
  private watched = new Map<string, Watched>();
  /** The current config's sites to their watch: `health` is asked on every request. */
  private bySite = new WeakMap<SiteConfig, Watched>();
  private readonly stopping = new AbortController();
  /** Open connections per upstream origin (the proxy's pooled ones and WebSockets): while one stays open, the notebook has not restarted. */
  private readonly live = new Map<string, number>();
  /** In a worker, which runs no tunnel: the primary's tunnel states, by upstream key. */
  private readonly reportedTunnels = new Map<string, TunnelState>();
  private tunnelListener: ((key: string, state: TunnelState) => void) | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Folder for tunnel PID files (in storage). */
    private readonly runDir: string,
    /** How long a probe that requests wait for may take: timeouts.upstream_idle. */
    private readonly probeTimeoutMs: number,
    private readonly sshPath = "ssh",
    /**
     * false in a worker (`workers:` 2 or more): the primary runs the tunnels and writes what
     * `gateway status` shows; a worker's monitor only proves the notebook for its own
     * connections, whose staying open is what keeps a proof valid.
     */
    private readonly supervises = true,
  ) {}

  /** Starts (or, after a reload, adjusts) tunnels and probes for `sites`. */
  update(sites: readonly SiteConfig[]): void {
    mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    const next = new Map<string, Watched>();
    const bySite = new WeakMap<SiteConfig, Watched>();
    for (const site of sites) {
      const key = upstreamKey(site);
      const existing = this.watched.get(key);
      if (existing) {
        existing.site = site;
        next.set(key, existing);
        bySite.set(site, existing);
        continue;
      }
      const watched: Watched = { key, site, tunnel: null, notebook: "unknown", probeError: null, checkedAt: null, proven: false, refusedAt: null, epoch: 0, probing: null };
      if (site.tunnel && this.supervises) {
        const pidFile = join(this.runDir, `ssh-${tunnelLocalPort(site)}.pid`);
        const tunnel = new SshTunnel(site, this.clock, this.logger, (state) => {
          // A tunnel that came up (again) may reach another notebook: prove it before anything passes.
          this.invalidateWatch(watched);
          this.record(watched);
          this.tunnelListener?.(watched.key, state);
          if (state.kind === "up") this.probeOnce(watched).catch((err: unknown) => this.logger.error("upstream.probe_failed", { site: site.hosts[0], error: describeError(err) }));
        }, pidFile, this.sshPath);
        Object.assign(watched, { tunnel });
        tunnel.start();
      }
      next.set(key, watched);
      bySite.set(site, watched);
    }
    for (const [key, old] of this.watched) {
      if (!next.has(key)) old.tunnel?.stop().catch((err: unknown) => this.logger.error("tunnel.stop_failed", { site: old.site.hosts[0], error: describeError(err) }));
    }
    this.watched = next;
    this.bySite = bySite;
  }

  /**
   * Probes every upstream now, then every 30 s, so that an open notebook is logged even when no
   * request comes (requests do not wait for this; they probe themselves when needed).
   */
  startProbing(): void {
    this.probeLoop().catch((err: unknown) => this.logger.error("upstream.probe_loop_failed", { error: describeError(err), hint: "requests still prove the notebook before they pass" }));
  }

  health(site: SiteConfig): UpstreamHealth {
    const w = this.bySite.get(site);
    return { tunnel: w?.tunnel?.state ?? (w && this.reportedTunnels.get(w.key)) ?? null, notebook: w?.notebook ?? "unknown", probeError: w?.probeError ?? null, checkedAt: w?.checkedAt ?? null, proven: w?.proven ?? false };
  }

  /**
   * null when the gate can decide from `health` now: the notebook was proven since it last came
   * up and a connection to it stayed open since (or the site allows an unprotected one, or a probe
   * just found a reason to refuse); otherwise the probe to wait for, whose result is in `health`.
   * A site from before a reload has no watch: `health` says unproven and the request is refused.
   */
  whenProven(site: SiteConfig): Promise<void> | null {
    const w = this.bySite.get(site);
    if (!w || site.allowUnprotectedUpstream) return null;
    if (w.proven && (this.live.get(site.upstream.origin) ?? 0) > 0) return null;
    if (!w.proven && w.refusedAt && this.clock.now().getTime() - w.refusedAt.getTime() < REFUSAL_REUSE_MS) return null;
    return this.probeOnce(w);
  }

  /** Told of every tunnel state change, by upstream key: the primary forwards them to its workers. */
  onTunnelState(listener: (key: string, state: TunnelState) => void): void {
    this.tunnelListener = listener;
  }

  /** The tunnels' states now, by upstream key: what a worker that starts later is told. */
  tunnelStates(): Array<[string, TunnelState]> {
    return [...this.watched.values()].flatMap((w) => (w.tunnel ? [[w.key, w.tunnel.state] as [string, TunnelState]] : []));
  }

  /**
   * In a worker: the primary's tunnel for this upstream changed state. Failure pages tell a tunnel
   * that is down from a notebook that is, and, as in the primary, whatever answers next is proven.
   */
  reportTunnelState(key: string, state: TunnelState): void {
    this.reportedTunnels.set(key, state);
    const w = this.watched.get(key);
    if (w) this.invalidateWatch(w);
  }

  /** A connection to `upstream` opened (a pooled one, or a WebSocket's after its 101). */
  connectionOpened(upstream: URL): void {
    this.live.set(upstream.origin, (this.live.get(upstream.origin) ?? 0) + 1);
  }

  /** A connection to `upstream` closed; with none left, a restart would go unseen: prove the notebook again. */
  connectionClosed(upstream: URL): void {
    const left = (this.live.get(upstream.origin) ?? 1) - 1;
    this.live.set(upstream.origin, left);
    if (left <= 0) this.invalidate(upstream);
  }

  /** A connection to `upstream` failed: whatever answers next is proven first. */
  invalidate(upstream: URL): void {
    for (const w of this.watched.values()) if (w.site.upstream.origin === upstream.origin) this.invalidateWatch(w);
  }

  /**
   * The notebook answered an API request without credentials: it has no password, whatever the
   * last probe said. Refused from now on; the next probe decides again.
   */
  markUnprotected(site: SiteConfig): void {
    const w = this.bySite.get(site);
    if (!w || site.allowUnprotectedUpstream) return;
    this.invalidateWatch(w);
    this.setNotebook(w, { notebook: "unprotected", error: null });
    w.refusedAt = this.clock.now();
  }

  /** PIDs of running ssh clients, for tests and for cleanup on exit. */
  tunnelPids(): number[] {
    return [...this.watched.values()].flatMap((w) => (w.tunnel?.pid ? [w.tunnel.pid] : []));
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all([...this.watched.values()].map((w) => w.tunnel?.stop()));
  }

  /** Writes what `gateway status` (another process) shows: storage/upstreams/<site>.json. */
  private record(w: Watched): void {
    if (!this.supervises) return;
    const health = { tunnel: w.tunnel?.state ?? null, notebook: w.notebook, checkedAt: w.checkedAt, updatedAt: this.clock.now() };
    writeFileAtomic(upstreamStatePath(this.runDir, w.site), JSON.stringify(health), 0o600).catch((err: unknown) =>
      this.logger.warn("upstream.state_unwritable", { site: w.site.hosts[0], error: describeError(err) }),
    );
  }

  private async probeLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      await Promise.all([...this.watched.values()].map((w) => this.probeOnce(w)));
      try {
        await this.clock.sleep(PROBE_INTERVAL_MS, this.stopping.signal);
      } catch {
        return;
      }
    }
  }

  private invalidateWatch(w: Watched): void {
    w.proven = false;
    w.refusedAt = null;
    w.epoch++;
  }

  /** One probe at a time per upstream; everyone who asks meanwhile waits for the same answer. */
  private probeOnce(w: Watched): Promise<void> {
    w.probing ??= this.probe(w).finally(() => {
      w.probing = null;
    });
    return w.probing;
  }

  /**
   * Proves the notebook, unless an invalidation overtakes the probe (what answered may be gone):
   * then it probes again, and after PROBE_ATTEMPTS it reports a reset, which is refused.
   */
  private async probe(w: Watched): Promise<void> {
    for (let attempt = 0; attempt < PROBE_ATTEMPTS; attempt++) {
      const epoch = w.epoch;
      const result = await probeNotebook(w.site, this.probeTimeoutMs);
      if (epoch !== w.epoch) continue;
      this.setNotebook(w, result);
      w.proven = result.notebook === "protected";
      // An open or non-Jupyter upstream is asked again after a second (a flood of requests must not
      // become a flood of probes); an unreachable one at the next request, so one back is served at once.
      w.refusedAt = result.notebook === "unprotected" || result.notebook === "not-a-notebook" ? this.clock.now() : null;
      return;
    }
    this.setNotebook(w, { notebook: "unreachable", error: "ECONNRESET" });
  }

  private setNotebook(w: Watched, { notebook: result, error }: ProbeResult): void {
    const changed = result !== w.notebook;
    w.notebook = result;
    w.probeError = error;
    w.checkedAt = this.clock.now();
    this.record(w);
    if (!changed) return;
    const fields = { site: w.site.hosts[0], upstream: w.site.upstream.host, notebook: result };
    if (result === "unprotected" && !w.site.allowUnprotectedUpstream) {
      this.logger.error("upstream.unprotected", { ...fields, hint: "the notebook answers its API without a password; requests are refused until it has one (jupyter notebook password)" });
    } else this.logger.info("upstream.probed", fields);
  }
}
