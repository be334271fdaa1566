import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { isIP } from "node:net";
import { ALL_ADDRESSES, canonicalClientAddress, loginStatePaths, requestLoginUnlock } from "../guard/login-unlocks.js";
import { systemClock } from "../platform/clock.js";
import { readFileIfExists } from "../platform/file-system.js";
import { describeError } from "../platform/logger.js";
import type { CliDeps } from "./cli-deps.js";
import { loadUsableConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

export interface UnlockArgs {
  readonly configPath: string;
  /** The positional arguments: one client address, unless `all`. */
  readonly addresses: readonly string[];
  readonly all: boolean;
}

/**
 * `gateway unlock ADDRESS` / `--all`: lifts login lock-outs (login_guard) before their window
 * ends. It writes an unlock request to storage/state/login-unlocks.json, which a running `serve`
 * watches (applied within ~1 s, logged as guard.login_unlocked) and a starting one reads; the
 * address's failed logins up to now stop counting, in every site.
 */
export async function unlockCommand(args: UnlockArgs, deps: CliDeps): Promise<ExitCode> {
  const [address, extra] = args.addresses;
  if (args.all === (address !== undefined) || extra !== undefined) {
    deps.stderr.write("gateway unlock: give one client ADDRESS or --all; see gateway unlock --help\n");
    return ExitCode.Usage;
  }
  if (address !== undefined && isIP(address) === 0) {
    deps.stderr.write(`gateway unlock: ${JSON.stringify(address)} is not an IP address; give the client address of the lock-out (the client of guard.login_locked), e.g. gateway unlock 203.0.113.7\n`);
    return ExitCode.Usage;
  }
  const config = await loadUsableConfigOrReport(args.configPath, deps);
  if (typeof config === "number") return config;
  const paths = loginStatePaths(config.storageDir);
  if (!existsSync(dirname(paths.failures))) {
    deps.stdout.write("no failed logins recorded; nothing to unlock\n");
    return ExitCode.Ok;
  }
  const key = address === undefined ? ALL_ADDRESSES : canonicalClientAddress(address);
  const now = systemClock.now();
  let counted: number;
  try {
    counted = await countRecentFailures(paths.failures, key, now, new Map(config.sites.map((s) => [s.hosts[0] ?? "", s.loginGuard.windowMs])));
    await requestLoginUnlock(paths.unlocks, key, now);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const fix = code === "EACCES" || code === "EPERM" ? "permission denied; run it as the gateway's user (sudo -u gateway gateway unlock …) or as root" : `${describeError(err)}; fix it and run it again`;
    deps.stderr.write(`gateway unlock: cannot record the unlock in ${dirname(paths.unlocks)}: ${fix}
`);
    return ExitCode.Failed;
  }
  const who = address === undefined ? "every address" : key;
  deps.stdout.write(`unlocked ${who}: ${counted} failed login(s) in the window no longer count; a running gateway applies it within ~1 s\n`);
  return ExitCode.Ok;
}

/** Failed logins of `key` (or of everyone) still inside their site's window, as serve last wrote them. */
async function countRecentFailures(path: string, key: string, now: Date, windowMsBySite: ReadonlyMap<string, number>): Promise<number> {
  const text = await readFileIfExists(path);
  const failures = text ? (JSON.parse(text) as Record<string, Record<string, number[]>>) : {};
  let count = 0;
  for (const [site, byAddress] of Object.entries(failures)) {
    const since = now.getTime() - (windowMsBySite.get(site) ?? 0);
    for (const [address, times] of Object.entries(byAddress)) {
      if (key === ALL_ADDRESSES || canonicalClientAddress(address) === key) count += times.filter((t) => t > since).length;
    }
  }
  return count;
}
