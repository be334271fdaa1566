import cluster, { type Worker } from "node:cluster";
import type { GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import type { SiteTable } from "../config/site-table.js";
import type { LoginLockout, LoginThrottle } from "../guard/login-throttle.js";
import { GatewayError } from "../platform/gateway-error.js";
import type { Logger } from "../platform/logger.js";
import type { MetricsSnapshot } from "../platform/metrics.js";
import type { TunnelState } from "../tunnel/ssh-tunnel.js";
import type { CertificateMessage, FromWorker, ToWorker } from "./worker-messages.js";

/** What the pool needs of the primary. */
export interface WorkerPoolDeps {
  /** The one login throttle: workers reserve and settle attempts through it. */
  readonly logins: LoginThrottle;
  /** The primary's current sites, to find the site a worker names. */
  readonly sites: () => SiteTable;
  /** The tunnels' states now (UpstreamMonitor.tunnelStates), for a worker that starts. */
  readonly tunnels: () => Array<[string, TunnelState]>;
  readonly logger: Logger;
  /** Starts a worker process: cluster.fork, or a fake in unit tests. */
  readonly fork?: () => Worker;
}

/** The verdict when the primary cannot count an attempt: refused, closed by default (a 503, not a lockout). */
const UNAVAILABLE: LoginLockout = { retryAfterS: 5, scope: "unavailable" };
/** A worker that dies before it is ready, or exits 0 (see the exit handler), is forked again after this pause, not in a tight loop. */
const RESTART_AFTER_EARLY_EXIT_MS = 1_000;
const MAX_RESTART_DELAY_MS = 60_000;
/** How long the primary waits for a worker's metrics before rendering without them. */
const METRICS_TIMEOUT_MS = 2_000;
/** After timeouts.drain, a worker that has not exited is killed after this much more. */
const DRAIN_GRACE_MS = 3_000;

/** A worker's process, whether it has started serving, and the login attempts it let through and has not settled. */
interface Member {
  readonly worker: Worker;
  ready: boolean;
  readonly loginsInFlight: Array<{ readonly site: SiteConfig; readonly address: string }>;
}

/**
 * The primary's side of `workers:` (node:cluster): forks the workers, which share the HTTPS
 * port, gives each the config, certificates and session ticket keys, pushes every change to all
 * of them, answers their login checks from the one LoginThrottle, gathers their metrics, replaces
 * a worker that dies, and drains them all at shutdown. The primary itself never proxies.
 */
export class WorkerPool {
  private readonly members = new Map<number, Member>();
  private readonly certificates = new Map<string, CertificateMessage>();
  private config: GatewayConfig;
  private ticketKeys = "";
  private revokedSerials: readonly string[] = [];
  private stopping = false;
  private nextRequestId = 0;
  private readonly metricsReplies = new Map<number, (snapshot: MetricsSnapshot) => void>();
  /** Workers that became ready, and forks since the last one that died before serving (for the back-off). */
  private starts = 0;
  private earlyExits = 0;

  constructor(
    config: GatewayConfig,
    private readonly deps: WorkerPoolDeps,
  ) {
    this.config = config;
  }

  /** Forks the workers and returns the HTTPS port once all of them listen on it. */
  async start(ticketKeys: Buffer): Promise<number> {
    this.ticketKeys = ticketKeys.toString("base64");
    // Round-robin (node's default on Linux, set here so NODE_CLUSTER_SCHED_POLICY cannot change
    // it): the primary accepts each connection and hands it to the next worker, so long-lived
    // connections (kernel WebSockets) spread evenly. With shared sockets the kernel picks, often
    // the same worker; their throughput was the same within noise (README, Workers). It must be
    // set before the first fork.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    // Workers listen on listen.https as configured: node:cluster gives every worker the primary's
    // one listening handle for that address and port (port 0 too: all share the port it got).
    const ports = await Promise.all(Array.from({ length: this.config.workers }, () => this.fork()));
    return ports[0] ?? 0;
  }

  setCertificate(certificate: CertificateMessage): void {
    this.certificates.set(certificate.hosts.join(" "), certificate);
    this.broadcast({ type: "certificate", ...certificate });
  }

  setTicketKeys(ticketKeys: Buffer): void {
    this.ticketKeys = ticketKeys.toString("base64");
    this.broadcast({ type: "ticket-keys", ticketKeys: this.ticketKeys });
  }

  setTunnelState(key: string, state: TunnelState): void {
    this.broadcast({ type: "tunnel", tunnel: [key, state] });
  }

  setRevocations(serials: ReadonlySet<string>): void {
    this.revokedSerials = [...serials];
    this.broadcast({ type: "revocations", revokedSerials: this.revokedSerials });
  }

  /** After the primary applied a reload: workers parse the same text and reopen the access log. */
  reload(config: GatewayConfig): void {
    this.config = config;
    for (const key of this.certificates.keys()) {
      if (!config.sites.some((s) => s.hosts.join(" ") === key)) this.certificates.delete(key);
    }
    this.broadcast({ type: "reload", configText: config.text });
  }

  /** Every ready worker's metrics; one that does not answer in time is left out. */
  async metrics(): Promise<MetricsSnapshot[]> {
    const ready = [...this.members.values()].filter((m) => m.ready);
    const answers = await Promise.all(ready.map((m) => new Promise<MetricsSnapshot | null>((resolve) => {
      const id = this.nextRequestId++;
      const timer = setTimeout(() => {
        this.metricsReplies.delete(id);
        resolve(null);
      }, METRICS_TIMEOUT_MS);
      this.metricsReplies.set(id, (snapshot) => {
        clearTimeout(timer);
        this.metricsReplies.delete(id);
        resolve(snapshot);
      });
      this.send(m.worker, { type: "metrics-request", id });
    })));
    return answers.filter((a): a is MetricsSnapshot => a !== null);
  }

  pids(): number[] {
    return [...this.members.values()].flatMap((m) => (m.worker.process.pid ? [m.worker.process.pid] : []));
  }

  /** Tells every worker to drain and waits until all exited; one that hangs is killed. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.members.values()].map(({ worker }) => new Promise<void>((resolve) => {
      if (worker.isDead()) return resolve();
      const timer = setTimeout(() => worker.process.kill("SIGKILL"), this.config.timeouts.drainMs + DRAIN_GRACE_MS);
      worker.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      this.send(worker, { type: "drain" });
    }));
    await Promise.all(exits);
  }

  /** Forks one worker; resolves with the port it listens on, rejects when it could not start. */
  private fork(): Promise<number> {
    const started = performance.now();
    const worker = (this.deps.fork ?? (() => cluster.fork()))();
    const member: Member = { worker, ready: false, loginsInFlight: [] };
    this.members.set(worker.id, member);
    return new Promise<number>((resolve, reject) => {
      worker.on("message", (message: FromWorker) => {
        if (message.type === "hello") this.send(worker, { type: "start", configFile: this.config.file, configText: this.config.text, httpsPort: this.config.listen.httpsPort, ticketKeys: this.ticketKeys, certificates: [...this.certificates.values()], revokedSerials: this.revokedSerials, tunnels: this.deps.tunnels() });
        else if (message.type === "ready") {
          member.ready = true;
          this.starts++;
          this.earlyExits = 0;
          this.deps.logger.info("gateway.worker_started", { pid: worker.process.pid ?? null, https: message.httpsPort, ms: Math.round(performance.now() - started) });
          resolve(message.httpsPort);
        } else if (message.type === "failed") {
          this.deps.logger.error("gateway.worker_start_failed", { pid: worker.process.pid ?? null, code: message.code, error: message.error, hint: this.starts > 0 ? `forked again in ${this.restartDelayMs() / 1000} s; fix the cause` : "the gateway does not start" });
          reject(new GatewayError(message.code, message.error));
        }
        else this.answer(member, message);
      });
      worker.on("exit", (code, signal) => {
        this.members.delete(worker.id);
        // Attempts the dead worker let through may have reached the notebook: they count as failures.
        for (const { site, address } of member.loginsInFlight.splice(0)) this.deps.logins.settle(site, address, true);
        if (!member.ready) reject(new GatewayError("workers.start_failed", `a worker exited (${signal ?? `code ${code}`}) before serving; see the lines above for why`));
        if (this.stopping) return;
        // Also code 0 (an operator's kill PID, a lost IPC channel, not only shutdown): the last
        // worker gone would leave no HTTPS while the primary looks healthy. Such an exit, or one
        // before serving, is replaced after a pause: systemd signals the whole group at shutdown,
        // and this process starts stopping within it, so that replacement is never forked.
        this.deps.logger.error("gateway.worker_exited", { pid: worker.process.pid ?? null, code, signal, hint: "a new worker is started; the others keep their connections" });
        const restart = (): void => {
          if (!this.stopping) this.fork().catch(() => undefined);
        };
        if (member.ready && code !== 0) restart();
        else {
          const delay = this.restartDelayMs();
          if (!member.ready) this.earlyExits++;
          setTimeout(restart, delay).unref();
        }
      });
    });
  }

  private answer(member: Member, message: Exclude<FromWorker, { type: "hello" | "ready" | "failed" }>): void {
    const { worker, loginsInFlight } = member;
    if (message.type === "metrics") {
      this.metricsReplies.get(message.id)?.(message.snapshot);
      return;
    }
    const site = this.deps.sites().lookup(message.site);
    if (message.type === "login-check") {
      // node:cluster may deliver a worker's last messages after its 'exit', when its in-flight
      // attempts were settled already: one reserved now would never be. A site the primary no
      // longer has (a reload raced the request) is refused too: closed by default.
      const gone = this.members.get(worker.id) !== member;
      const lockout = site && !gone ? this.deps.logins.check(site, message.address) : UNAVAILABLE;
      if (site && !lockout) loginsInFlight.push({ site, address: message.address });
      this.send(worker, { type: "login-verdict", id: message.id, lockout });
    } else if (message.type === "login-settle") {
      // By name, not object: a reload makes new SiteConfigs. Only what was reserved is settled,
      // once (the worker's exit settles the rest).
      const index = loginsInFlight.findIndex((a) => a.site.hosts[0] === message.site && a.address === message.address);
      const [reserved] = index >= 0 ? loginsInFlight.splice(index, 1) : [];
      if (reserved) this.deps.logins.settle(site ?? reserved.site, message.address, message.clientLeftFirst);
    }
    else if (site && message.type === "login-record") this.deps.logins.record(site, message.address, message.status);
  }

  /** 1 s, doubling for each worker in a row that died before serving (a config file gone, say), up to a minute. */
  private restartDelayMs(): number {
    return Math.min(RESTART_AFTER_EARLY_EXIT_MS * 2 ** this.earlyExits, MAX_RESTART_DELAY_MS);
  }

  private broadcast(message: ToWorker): void {
    for (const { worker } of this.members.values()) this.send(worker, message);
  }

  private send(worker: Worker, message: ToWorker): void {
    // A worker that is exiting cannot take messages; its replacement gets the state at start.
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  }
}
