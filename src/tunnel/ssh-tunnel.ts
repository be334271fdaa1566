import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import type { SiteConfig, TunnelConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { describeError, type Logger } from "../platform/logger.js";

/** Where the tunnel is, as the error page and `gateway status` tell it. */
export type TunnelState =
  | { readonly kind: "connecting"; readonly attempt: number }
  | { readonly kind: "up"; readonly since: Date; readonly pid: number }
  | { readonly kind: "reconnecting"; readonly attempt: number; readonly nextAttemptAt: Date; readonly lastError: string }
  | { readonly kind: "stopped" };

/** Backoff between attempts: 0.5 s doubling to 30 s, ±20 % jitter; reset once a tunnel stayed up 10 s. */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
const STABLE_AFTER_MS = 10_000;
/** How long ssh gets to authenticate and open the forward. */
const CONNECT_TIMEOUT_S = 10;
/**
 * Keep-alive through the SSH connection: a frozen workstation or sshd is noticed after
 * 4 s x 3 unanswered probes (12-16 s) and ssh exits, so the tunnel is rebuilt.
 */
const SERVER_ALIVE_INTERVAL_S = 4;
const SERVER_ALIVE_COUNT_MAX = 3;

/** The ssh command line for a tunnel: safe options only; the forward listens on 127.0.0.1. */
export function sshArguments(tunnel: TunnelConfig, localPort: number): string[] {
  return ["-N", "-L", localForward(tunnel, localPort), ...sshSessionArguments(tunnel)];
}

/** The `-L` argument: 127.0.0.1:<local port>:<remote>. */
export function localForward(tunnel: TunnelConfig, localPort: number): string {
  return `127.0.0.1:${localPort}:${tunnel.remote}`;
}

/** The port the tunnel's local end listens on, on 127.0.0.1: the upstream's. */
export function tunnelLocalPort(site: SiteConfig): number {
  return Number(site.upstream.port || 80);
}

/**
 * The tunnel's ssh options and destination, then `command`: the same login the tunnel makes.
 * `gateway check` runs `true` with it to prove that ssh authenticates without a prompt.
 */
export function sshSessionArguments(tunnel: TunnelConfig, ...command: string[]): string[] {
  return [
    "-T",
    "-p", String(tunnel.port),
    ...(tunnel.identityFile ? ["-i", tunnel.identityFile, "-o", "IdentitiesOnly=yes"] : []),
    ...(tunnel.knownHostsFile ? ["-o", `UserKnownHostsFile=${tunnel.knownHostsFile}`] : []),
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "ExitOnForwardFailure=yes",
    "-o", `ServerAliveInterval=${SERVER_ALIVE_INTERVAL_S}`,
    "-o", `ServerAliveCountMax=${SERVER_ALIVE_COUNT_MAX}`,
    "-o", `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
    "-o", "LogLevel=ERROR",
    "--",
    tunnel.ssh,
    ...command,
  ];
}

/**
 * Keeps `ssh -N -L` up for a site: starts it, notices when the forward is usable, restarts it
 * with backoff and jitter when it exits (logging ssh's own reason), stops it with the gateway.
 */
export class SshTunnel {
  private current: TunnelState = { kind: "stopped" };
  private child: ChildProcess | undefined;
  private readonly stopping = new AbortController();
  private readonly localPort: number;
  private readonly tunnel: TunnelConfig;

  constructor(
    private readonly site: SiteConfig,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onChange: (state: TunnelState) => void,
    /** Records the ssh PID, so an ssh left behind by a gateway killed with SIGKILL is stopped at the next start. */
    private readonly pidFile: string,
    private readonly sshPath = "ssh",
  ) {
    if (!site.tunnel) throw new Error("SshTunnel for a site without tunnel:");
    this.tunnel = site.tunnel;
    this.localPort = tunnelLocalPort(site);
  }

  get state(): TunnelState {
    return this.current;
  }

  /** The running ssh client's PID, for `stop()` and tests. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    stopLeftover(this.pidFile, localForward(this.tunnel, this.localPort));
    this.updatePidFile(null);
    // Each attempt's failures end as a tunnel.down reason; what could still reach here is a bug in the loop itself.
    this.superviseLoop().catch((err: unknown) => this.logger.error("tunnel.supervisor_failed", { site: this.site.hosts[0], error: describeError(err), hint: "the tunnel is no longer restarted; restart the gateway" }));
  }

  /** Stops ssh (SIGTERM, then SIGKILL after 2 s) and waits for it to exit. */
  async stop(): Promise<void> {
    this.stopping.abort();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(timer);
    }
    this.setState({ kind: "stopped" });
  }

  private async superviseLoop(): Promise<void> {
    const signal = this.stopping.signal;
    let attempt = 0;
    while (!signal.aborted) {
      attempt++;
      this.setState({ kind: "connecting", attempt });
      const startedAt = this.clock.now().getTime();
      // spawn() throws at once for arguments it refuses (a NUL byte in tunnel.ssh): a failed attempt like any other.
      const reason = await this.runOnce().catch((err: unknown) => `ssh could not be started: ${describeError(err)}`);
      if (signal.aborted) return;
      if (this.clock.now().getTime() - startedAt > STABLE_AFTER_MS) attempt = 1;
      const base = Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS);
      const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
      const nextAttemptAt = new Date(this.clock.now().getTime() + delayMs);
      this.setState({ kind: "reconnecting", attempt, nextAttemptAt, lastError: reason });
      this.logger.warn("tunnel.down", { site: this.site.hosts[0], ssh: this.tunnel.ssh, reason, attempt, next_attempt_ms: delayMs });
      try {
        await this.clock.sleep(delayMs, signal);
      } catch {
        return;
      }
    }
  }

  /** Runs ssh until it exits; resolves with why (ssh's last stderr line, or the exit status). */
  private runOnce(): Promise<string> {
    return new Promise((resolve) => {
      const child = spawn(this.sshPath, sshArguments(this.tunnel, this.localPort), { stdio: ["ignore", "ignore", "pipe"] });
      this.child = child;
      if (child.pid) this.updatePidFile(child.pid);
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      let settled = false;
      const finish = (reason: string): void => {
        if (settled) return;
        settled = true;
        resolve(reason);
      };
      child.once("error", (err: NodeJS.ErrnoException) => finish(err.code === "ENOENT" ? `${this.sshPath} not found; install the OpenSSH client (apt-get install openssh-client)` : err.message));
      child.once("exit", (code, sig) => {
        this.updatePidFile(null);
        const lastLine = stderr.trim().split("\n").pop()?.trim();
        finish(lastLine || (sig ? `ssh killed by ${sig}` : `ssh exited with status ${code}`));
      });
      this.waitForForward(child)
        .then((up) => {
          if (!up || settled || !child.pid) return;
          this.setState({ kind: "up", since: this.clock.now(), pid: child.pid });
          this.logger.info("tunnel.up", { site: this.site.hosts[0], ssh: this.tunnel.ssh, local: `127.0.0.1:${this.localPort}`, remote: this.tunnel.remote, pid: child.pid });
        })
        .catch((err: unknown) => this.logger.error("tunnel.state_failed", { site: this.site.hosts[0], error: describeError(err) }));
    });
  }

  /** Polls the local end until it accepts (ssh opened the forward) or ssh exits. */
  private async waitForForward(child: ChildProcess): Promise<boolean> {
    const deadline = this.clock.now().getTime() + (CONNECT_TIMEOUT_S + 5) * 1000;
    while (child.exitCode === null && child.signalCode === null && this.clock.now().getTime() < deadline) {
      if (await accepts(this.localPort)) return child.exitCode === null;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /**
   * Records ssh's PID (null: removes the record) for stopLeftover. A record that cannot be written
   * costs only that cleanup after a SIGKILL, so it is logged and the tunnel runs anyway.
   */
  private updatePidFile(pid: number | null): void {
    try {
      if (pid === null) rmSync(this.pidFile, { force: true });
      else writeFileSync(this.pidFile, `${pid}\n`, { mode: 0o600 });
    } catch (err) {
      this.logger.warn("tunnel.pid_file_failed", { site: this.site.hosts[0], file: this.pidFile, error: describeError(err), hint: "an ssh left behind if the gateway is killed with SIGKILL will not be stopped at the next start; make the folder writable for the gateway's user" });
    }
  }

  private setState(state: TunnelState): void {
    this.current = state;
    this.onChange(state);
  }
}

/** Stops an ssh from an earlier gateway run that still holds this forward (its PID file survived a SIGKILL). */
function stopLeftover(pidFile: string, forward: string): void {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (cmdline.some((arg) => arg.endsWith("ssh")) && cmdline.includes(forward)) process.kill(pid, "SIGTERM");
  } catch {
    // no PID file, or that process is gone: nothing left behind
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}
