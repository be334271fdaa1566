import cluster, { type Worker } from "node:cluster";
import { join } from "node:path";
import type { GatewayConfig, SiteConfig } from "../config/gateway-config.js";
import { ConfigErrors } from "../config/config-error.js";
import { parseConfig } from "../config/load-config.js";
import { SiteTable } from "../config/site-table.js";
import type { LoginGate, LoginLockout } from "../guard/login-throttle.js";
import { systemClock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, JsonLineLogger, type LogFields, type Logger } from "../platform/logger.js";
import { CountingLogger, Metrics } from "../platform/metrics.js";
import { FileCertStore } from "../tls/cert-store.js";
import { SniContexts } from "../tls/sni-context.js";
import { UpstreamMonitor } from "../tunnel/upstream-monitor.js";
import { HttpsServing } from "./https-serving.js";
import type { TunnelState } from "../tunnel/ssh-tunnel.js";
import type { FromWorker, ToWorker, TunnelStateMessage } from "./worker-messages.js";

type StartMessage = Extract<ToWorker, { type: "start" }>;

/** How long a worker waits for the primary's login verdict. */
const LOGIN_VERDICT_TIMEOUT_MS = 5_000;

/**
 * The login guard of a worker: every check, settle and record goes to the primary, whose one
 * LoginThrottle counts for all workers together (in-flight attempts included).
 */
export class PrimaryLoginGate implements LoginGate {
  private readonly verdicts = new Map<number, (lockout: LoginLockout | null) => void>();
  private nextId = 0;

  constructor(private readonly send: (message: FromWorker) => void) {}

  /** Without the primary's answer in this time (its message or ours lost), the attempt is refused: 503, closed by default. */
  check(site: SiteConfig, address: string, timeoutMs = LOGIN_VERDICT_TIMEOUT_MS): Promise<LoginLockout | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.verdict(id, { retryAfterS: 5, scope: "unavailable" }), timeoutMs);
      this.verdicts.set(id, (lockout) => {
        clearTimeout(timer);
        resolve(lockout);
      });
      this.send({ type: "login-check", id, site: site.hosts[0] ?? "", address });
    });
  }

  verdict(id: number, lockout: LoginLockout | null): void {
    this.verdicts.get(id)?.(lockout);
    this.verdicts.delete(id);
  }

  settle(site: SiteConfig, address: string, clientLeftFirst: boolean): void {
    this.send({ type: "login-settle", site: site.hosts[0] ?? "", address, clientLeftFirst });
  }

  record(site: SiteConfig, address: string, status: number): void {
    this.send({ type: "login-record", site: site.hosts[0] ?? "", address, status });
  }
}

/** Adds `worker: PID` to every line, so a log tells the workers apart. */
function taggedLogger(inner: Logger, pid: number): Logger {
  const tag = (fields: LogFields = {}): LogFields => ({ ...fields, worker: pid });
  return { info: (event, fields) => inner.info(event, tag(fields)), warn: (event, fields) => inner.warn(event, tag(fields)), error: (event, fields) => inner.error(event, tag(fields)) };
}

/**
 * One worker of `workers:` 2 or more: terminates TLS and proxies, with what the primary sends it
 * (config, certificates, ticket keys, revocations) and its login checks answered by the primary.
 * No ACME, no tunnels, no timers of its own.
 */
class WorkerGateway {
  private sites: SiteTable;
  private readonly sni: SniContexts;
  private readonly upstreams: UpstreamMonitor;
  private readonly logins: PrimaryLoginGate;
  private readonly metrics = new Metrics();
  private readonly serving: HttpsServing;
  private revokedSerials: ReadonlySet<string>;

  constructor(
    private readonly config: GatewayConfig,
    start: StartMessage,
    private readonly logger: Logger,
    private readonly channel: Worker,
    stdout: NodeJS.WritableStream,
  ) {
    const counting = new CountingLogger(logger, this.metrics);
    this.sites = new SiteTable(config.sites);
    const store = new FileCertStore(config.storageDir);
    this.sni = new SniContexts((name) => store.readAlpnCertificate(name));
    this.sni.setTicketKeys(Buffer.from(start.ticketKeys, "base64"));
    for (const c of start.certificates) this.sni.set(c.hosts, c, c.isDefault, c.clientCaPem ?? undefined);
    this.revokedSerials = new Set(start.revokedSerials);
    this.upstreams = new UpstreamMonitor(systemClock, counting, join(config.storageDir, "upstreams"), config.timeouts.upstreamIdleMs, undefined, false);
    this.upstreams.update(config.sites);
    for (const tunnel of start.tunnels) this.reportTunnel(tunnel);
    this.logins = new PrimaryLoginGate((message) => this.send(message));
    this.serving = new HttpsServing({
      config,
      sites: () => this.sites,
      sni: this.sni,
      upstreams: this.upstreams,
      logins: this.logins,
      clientCerts: { requested: config.sites.some((s) => s.clientCertificatesRequired), revokedSerials: () => this.revokedSerials },
      metrics: this.metrics,
      clock: systemClock,
      logger: counting,
      stdout,
    });
  }

  listen(port: number): Promise<number> {
    return this.serving.listen(port);
  }

  /** Applies a message from the primary; "drain" is the caller's. */
  apply(message: ToWorker): void {
    if (message.type === "certificate") this.sni.set(message.hosts, message, message.isDefault, message.clientCaPem ?? undefined);
    else if (message.type === "ticket-keys") this.sni.setTicketKeys(Buffer.from(message.ticketKeys, "base64"));
    else if (message.type === "tunnel") this.reportTunnel(message.tunnel);
    else if (message.type === "revocations") this.revokedSerials = new Set(message.revokedSerials);
    else if (message.type === "login-verdict") this.logins.verdict(message.id, message.lockout);
    else if (message.type === "metrics-request") this.send({ type: "metrics", id: message.id, snapshot: this.metrics.snapshot() });
    else if (message.type === "reload") this.reload(message.configText);
  }

  async stop(): Promise<void> {
    await this.serving.stop();
    await this.upstreams.stop();
  }

  private reload(configText: string): void {
    this.serving.reopenLog();
    try {
      const config = parseConfig(configText, this.config.file, this.config.file);
      this.sites = new SiteTable(config.sites);
      this.upstreams.update(config.sites);
      this.sni.retain(new Set(config.sites.flatMap((s) => s.hosts)));
    } catch (err) {
      // The primary validated these bytes, but parsing reads files again (keys, hooks) that may
      // have changed since: keep serving with the config this worker has rather than crash.
      this.logger.error("gateway.worker_reload_failed", { error: describeError(err), hint: "this worker keeps its previous config; fix the files the config names and reload again" });
    }
  }

  /** A tunnel state from the primary, its Dates revived from JSON's strings. */
  private reportTunnel([key, state]: TunnelStateMessage): void {
    const revived: TunnelState =
      state.kind === "up" ? { ...state, since: new Date(state.since) } : state.kind === "reconnecting" ? { ...state, nextAttemptAt: new Date(state.nextAttemptAt) } : state;
    this.upstreams.reportTunnelState(key, revived);
  }

  private send(message: FromWorker): void {
    if (this.channel.isConnected()) this.channel.send(message, undefined, () => undefined);
  }
}

/** Whether this process is a worker the primary forked (then `serve` runs `serveAsWorker`). */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/**
 * A worker's life: waits for the primary's start message, serves, and drains when the primary
 * says so or SIGTERM/SIGINT arrive (systemd signals the whole group). Returns its exit code.
 */
export async function serveAsWorker(stdout: NodeJS.WritableStream, onSignal: (signal: "SIGHUP" | "SIGTERM" | "SIGINT", handler: () => void) => () => void): Promise<"drained" | "failed"> {
  const channel = cluster.worker;
  if (!channel) throw new Error("serveAsWorker outside a cluster worker");
  // SIGHUP reaches the whole process group; the primary reloads and tells the workers.
  const ignoreHup = onSignal("SIGHUP", () => undefined);
  // A primary whose start failed elsewhere drains the workers that have not started yet too.
  const start = await new Promise<StartMessage | null>((resolve) => {
    const onStart = (message: ToWorker): void => {
      if (message.type !== "start" && message.type !== "drain") return;
      channel.off("message", onStart);
      resolve(message.type === "start" ? message : null);
    };
    channel.on("message", onStart);
    channel.send({ type: "hello" } satisfies FromWorker);
  });
  if (!start) {
    ignoreHup();
    return "drained";
  }
  // Until the config is read, lines use the default format.
  let logger = taggedLogger(new JsonLineLogger(stdout), channel.process.pid ?? 0);
  let gateway: WorkerGateway | undefined;
  let drainRequested!: () => void;
  const drained = new Promise<void>((resolve) => (drainRequested = resolve));
  channel.on("message", (message: ToWorker) => (message.type === "drain" ? drainRequested() : gateway?.apply(message)));
  const unsubscribe = (["SIGTERM", "SIGINT"] as const).map((signal) => onSignal(signal, () => drainRequested()));
  try {
    // Reading the config (it reads key files and hooks again), opening the access log and
    // listening may fail: each is reported to the primary.
    const config = parseConfig(start.configText, start.configFile, start.configFile);
    logger = taggedLogger(new JsonLineLogger(stdout, undefined, config.logs.format), channel.process.pid ?? 0);
    gateway = new WorkerGateway(config, start, logger, channel, stdout);
    const httpsPort = await gateway.listen(start.httpsPort);
    channel.send({ type: "ready", httpsPort } satisfies FromWorker);
  } catch (err) {
    await gateway?.stop();
    const code = err instanceof GatewayError ? err.code : err instanceof ConfigErrors ? "workers.config_unreadable" : null;
    if (!code) throw err;
    logger.error("gateway.start_failed", { code, error: describeError(err) });
    // Delivered before this process exits, so the primary reports the cause.
    await new Promise<void>((resolve) => channel.send({ type: "failed", code, error: describeError(err) } satisfies FromWorker, undefined, () => resolve()));
    return "failed";
  }
  await drained;
  for (const u of [ignoreHup, ...unsubscribe]) u();
  await gateway.stop();
  return "drained";
}
