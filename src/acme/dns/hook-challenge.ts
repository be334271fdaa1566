import { spawn } from "node:child_process";
import type { DnsHookConfig } from "../../config/gateway-config.js";
import { GatewayError } from "../../platform/gateway-error.js";
import { describeError, type Logger } from "../../platform/logger.js";
import type { DnsChallenge, DnsChallengeRequest } from "./dns-challenge.js";

/** How much of a hook's stderr its failure message quotes (the last lines, where the error is). */
const STDERR_TAIL_CHARS = 400;
/** After a hook exits, how long its output may still arrive: a background child it left (`nsupdate … &`) may hold the pipes open for long. */
const EXIT_GRACE_MS = 200;

/**
 * dns-01 through the user's scripts, with certbot's manual hook contract so that existing
 * `--manual-auth-hook` / `--manual-cleanup-hook` scripts work unchanged: the environment carries
 * CERTBOT_DOMAIN, CERTBOT_VALIDATION, CERTBOT_REMAINING_CHALLENGES and CERTBOT_ALL_DOMAINS (and,
 * for the cleanup hook, CERTBOT_AUTH_OUTPUT: what the auth hook printed); exit 0 means done. Like
 * certbot, the auth hook itself waits until the record is visible. CERTBOT_TOKEN is HTTP-01 only
 * in certbot, so it is not set: scripts that test it to tell HTTP-01 from DNS-01 keep working.
 */
/** The process groups of the hooks running now in this process. */
const running = new Set<number>();

/**
 * Ends every running hook with what it started (its process group), as its timeout would. Runs
 * when the process exits: `serve` exits once the gateway has stopped, and a hook, detached in its
 * own group, would otherwise outlive it. (Not on a SIGHUP reload: an order in flight goes on.)
 */
export function stopRunningHooks(): void {
  for (const group of running) killGroup(group);
  running.clear();
}

export class HookChallenge implements DnsChallenge {
  constructor(
    private readonly config: DnsHookConfig,
    private readonly logger: Logger,
  ) {}

  async present(request: DnsChallengeRequest): Promise<() => Promise<void>> {
    const env = {
      CERTBOT_DOMAIN: request.name,
      CERTBOT_VALIDATION: request.value,
      CERTBOT_REMAINING_CHALLENGES: String(request.remaining),
      CERTBOT_ALL_DOMAINS: request.allNames.join(","),
    };
    const authOutput = await this.run("acme.dns.auth_hook", this.config.authHook, env);
    this.logger.info("acme.dns_hook_done", { hook: this.config.authHook, domain: request.name });
    const { cleanupHook } = this.config;
    return async () => {
      if (!cleanupHook) return;
      await this.run("acme.dns.cleanup_hook", cleanupHook, { ...env, CERTBOT_AUTH_OUTPUT: authOutput.trim() }).catch((err) =>
        // The CA has decided by now; a stale TXT record does no harm beyond clutter.
        this.logger.warn("acme.dns_cleanup_failed", { hook: cleanupHook, domain: request.name, error: describeError(err) }),
      );
    };
  }

  /** Runs `path` with the gateway's environment plus `vars`; resolves with its stdout. */
  private run(key: string, path: string, vars: Record<string, string>): Promise<string> {
    const subject = `${key} ${path} for ${vars.CERTBOT_DOMAIN}`;
    return new Promise((resolve, reject) => {
      // The hook gets the gateway's environment, as certbot's hooks get certbot's (PATH, HOME, credentials the user exported).
      // Its own process group, so a timeout stops what it started too (a sleep, nsupdate).
      const child = spawn(path, [], { env: { ...process.env, ...vars }, stdio: ["ignore", "pipe", "pipe"], detached: true });
      let stdout = "";
      let stderr = "";
      // CERTBOT_AUTH_OUTPUT is a record ID or so: keep the first 64 KiB, the most an environment variable comfortably holds.
      child.stdout.on("data", (d: Buffer) => (stdout = (stdout + d.toString()).slice(0, 65_536)));
      child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4 * STDERR_TAIL_CHARS)));
      const group = child.pid;
      if (group !== undefined) {
        if (running.size === 0) process.once("exit", stopRunningHooks);
        running.add(group);
      }
      let settled = false;
      const settle = (err: GatewayError | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(grace);
        if (group !== undefined) {
          running.delete(group);
          if (running.size === 0) process.off("exit", stopRunningHooks);
        }
        if (err) reject(err);
        else resolve(stdout);
      };
      const timer = setTimeout(() => {
        if (group !== undefined) killGroup(group);
        const said = tail(stderr);
        settle(new GatewayError("dns.hook_timeout", `${subject}: timed out after ${this.config.timeoutMs / 1000} s and was stopped${said ? `; it said: ${said}` : ""}; make it finish sooner, or raise acme.dns.hook_timeout`));
      }, this.config.timeoutMs);
      let grace: NodeJS.Timeout | undefined;
      child.on("error", (err: NodeJS.ErrnoException) => {
        settle(new GatewayError("dns.hook_failed", `${subject}: cannot run it (${err.code ?? err.message}); check the path and that it is executable (chmod +x)`, { cause: err }));
      });
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        const said = tail(stderr);
        if (code === 0) settle(null);
        else settle(new GatewayError("dns.hook_failed", `${subject}: exited with ${code === null ? `signal ${signal}` : `status ${code}`}${said ? `: ${said}` : " and printed nothing on stderr"}`));
      };
      // The hook's exit decides, not the pipes' closing: a child it left in the background may hold them.
      child.on("exit", (code, signal) => {
        grace = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish(code, signal);
        }, EXIT_GRACE_MS);
      });
      child.on("close", finish);
    });
  }
}

/** Ends process group `group` (a hook and what it started). */
function killGroup(group: number): void {
  try {
    process.kill(-group, "SIGKILL");
  } catch {
    // ESRCH: the group has ended meanwhile; nothing is left to stop.
  }
}

/** The end of a hook's stderr, on one line. */
function tail(stderr: string): string {
  const oneLine = stderr.trim().replace(/\s*\n\s*/g, " | ");
  return oneLine.length > STDERR_TAIL_CHARS ? `…${oneLine.slice(-STDERR_TAIL_CHARS)}` : oneLine;
}
