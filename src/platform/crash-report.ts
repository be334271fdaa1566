import { describeError, JsonLineLogger } from "./logger.js";

/** EX_SOFTWARE from sysexits.h: the process ends on a bug, for the supervisor to restart it. */
const CRASH_EXIT_CODE = 70;

/**
 * The last word of a process that hit a bug (an error nobody owned): one `gateway.crashed` JSON
 * line with the error and its stack on `out`, then `exit(70)`. main.ts installs it for uncaught
 * exceptions and unhandled rejections, and uses it for a command that throws. It is not a net:
 * the process ends, and systemd's Restart=on-failure or Docker's restart policy starts it again.
 */
export function reportCrash(err: unknown, origin: string, out: NodeJS.WritableStream, exit: (code: number) => void): void {
  new JsonLineLogger(out).error("gateway.crashed", { origin, error: describeError(err), stack: err instanceof Error ? (err.stack ?? null) : null });
  exit(CRASH_EXIT_CODE);
}
