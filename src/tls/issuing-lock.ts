import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, stat, utimes, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Clock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError } from "../platform/logger.js";
import { isProcessRunning } from "../platform/process-status.js";

/** How the issuing lock is kept alive and judged. */
export interface LockTiming {
  /** How often the holder touches the lock file (its mtime is the heartbeat). Default 3 s. */
  readonly heartbeatMs: number;
  /**
   * A lock whose heartbeat is older than this is stale (its holder was killed or froze) and is
   * taken over. Default 15 s: five missed heartbeats, far above any event-loop stall.
   */
  readonly staleMs: number;
  /**
   * How long to wait for a holder whose heartbeat is fresh before giving up. Default 2 h: the
   * holder is alive and bounded by its own timeouts, and one dns-01 order may take long
   * (acme.dns propagation_timeout and hook_timeout up to 1 h each).
   */
  readonly waitMs: number;
  /** How often a waiter looks again. Default 250 ms. */
  readonly pollMs: number;
  /**
   * After replacing a stale lock, how long a taker waits before trusting it holds the lock: longer
   * than any other taker needs between judging the same lock stale and replacing it. Default 1 s
   * (only taking over costs it).
   */
  readonly settleMs: number;
}

export const DEFAULT_LOCK_TIMING: LockTiming = { heartbeatMs: 3_000, staleMs: 15_000, waitMs: 7_200_000, pollMs: 250, settleMs: 1_000 };

/** What a lock's taker is told, for its log. `holder` is the lock file's text ("pid 7 on web-1 since …"). */
export interface LockObserver {
  /** Another process holds the lock with a fresh heartbeat: this one waits (called once). */
  waiting?(holder: string, path: string): void;
  /** The lock was stale (its heartbeat `heartbeatAgeMs` old) and is now this process's. */
  tookOver?(holder: string, heartbeatAgeMs: number, path: string): void;
}

/** A held issuing lock: its heartbeat runs until release(). */
export interface IssuingLock {
  /** Throws `store.lock_lost` when the lock file is no longer this holder's (another process took it over as stale). */
  assertHeld(): Promise<void>;
  /** Removes the lock file if it is still this holder's; another holder's lock is left alone. */
  release(): Promise<void>;
}

/**
 * The staleness rule: only the heartbeat's age counts. A PID means nothing across PID namespaces
 * (each container has its own PID 1) or hosts sharing storage; a heartbeat's mtime does.
 */
export function isLockStale(heartbeat: Date, now: Date, staleMs: number): boolean {
  return now.getTime() - heartbeat.getTime() > staleMs;
}

/** How long a lock from a gateway version before the heartbeat (its text a bare PID) counts while that PID runs here. */
const LEGACY_LOCK_MS = 10 * 60_000;

/**
 * Whether `held` belongs to no live holder. A lock with a token is judged by its heartbeat
 * (isLockStale). A bare PID was written by a gateway from before the heartbeat, which never
 * refreshes it: judged by that version's rule, its PID gone from this host or older than 10 min.
 */
function isHolderGone(held: { text: string; heartbeat: Date }, now: Date, staleMs: number): boolean {
  const legacyPid = /^(\d+)\n?$/.exec(held.text)?.[1];
  if (legacyPid === undefined) return isLockStale(held.heartbeat, now, staleMs);
  return !isProcessRunning(Number(legacyPid)) || isLockStale(held.heartbeat, now, LEGACY_LOCK_MS);
}

/**
 * Takes the lock file at `path`, created atomically (O_EXCL) with a unique token, so that of
 * processes racing for it exactly one wins, in this container or another on the same storage.
 * A holder whose heartbeat is older than `timing.staleMs` by `clock` is taken over; one whose
 * heartbeat is fresh is waited for up to `timing.waitMs`.
 */
export async function acquireIssuingLock(path: string, subject: string, clock: Clock, timing: LockTiming, observer: LockObserver = {}): Promise<IssuingLock> {
  const text = `${randomBytes(12).toString("hex")} pid ${process.pid} on ${hostname()} since ${clock.now().toISOString()}\n`;
  const deadline = performance.now() + timing.waitMs;
  let announced = false;
  for (;;) {
    const held = await readLock(path);
    const now = clock.now();
    if (!held) {
      if (await create(path, text, clock)) return new HeldLock(path, subject, text, clock, timing);
      continue; // another process created it first
    }
    if (isHolderGone(held, now, timing.staleMs)) {
      // Every taker that judged the same lock stale puts its own in place; the last one stays.
      // Waiting settleMs, longer than a look-then-replace takes, lets each such taker act first,
      // so only the last finds its own text afterwards (Fischer's mutual exclusion by delay).
      await replace(path, text, clock);
      await sleep(timing.settleMs);
      if ((await readLock(path))?.text === text) {
        observer.tookOver?.(describeHolder(held.text), now.getTime() - held.heartbeat.getTime(), path);
        return new HeldLock(path, subject, text, clock, timing);
      }
      continue; // another taker's lock replaced this one's: wait for it like for any holder
    }
    if (!announced) observer.waiting?.(describeHolder(held.text), path);
    announced = true;
    if (performance.now() > deadline) {
      throw new GatewayError("store.locked", `${subject}: another gateway process has been issuing this certificate for over ${formatWait(timing.waitMs)} (${describeHolder(held.text)}, heartbeat ${Math.round((now.getTime() - held.heartbeat.getTime()) / 1000)} s ago, ${path}); it is alive (one dns-01 order may take up to acme.dns propagation_timeout plus hook_timeout per name): let it finish and run this again, or stop it (a holder that stops refreshing its heartbeat is taken over after ${timing.staleMs / 1000} s)`);
    }
    await sleep(timing.pollMs);
  }
}

class HeldLock implements IssuingLock {
  private readonly heartbeat: NodeJS.Timeout;
  private heartbeatError: string | null = null;

  constructor(
    private readonly path: string,
    private readonly subject: string,
    private readonly text: string,
    private readonly clock: Clock,
    private readonly timing: LockTiming,
  ) {
    // beat() never rejects: a failed touch is kept in heartbeatError for assertHeld() to report.
    this.heartbeat = setInterval(() => void this.beat(), timing.heartbeatMs);
    this.heartbeat.unref(); // a lock never keeps the process alive
  }

  async assertHeld(): Promise<void> {
    const held = await readLock(this.path);
    if (held?.text === this.text) return;
    const why = this.heartbeatError ? `: refreshing the heartbeat failed (${this.heartbeatError})` : "";
    throw new GatewayError("store.lock_lost", `${this.subject}: another gateway process took the issuing lock over (${held ? describeHolder(held.text) : "now released"}, ${this.path}) because this one's heartbeat was over ${this.timing.staleMs / 1000} s old${why}; the certificate this process obtained is not installed`);
  }

  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    const held = await readLock(this.path);
    if (held?.text === this.text) await rm(this.path, { force: true });
  }

  /** Touches the lock file only while it is still this holder's: never refreshes another's. */
  private async beat(): Promise<void> {
    try {
      const held = await readLock(this.path);
      if (held?.text !== this.text) {
        clearInterval(this.heartbeat); // lost: assertHeld() says so before anything is installed
        return;
      }
      const now = this.clock.now();
      await utimes(this.path, now, now);
      this.heartbeatError = null;
    } catch (err) {
      this.heartbeatError = describeError(err);
    }
  }
}

/** Creates the lock (O_EXCL) with `text` and a heartbeat of now; false when it exists. */
async function create(path: string, text: string, clock: Clock): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  await write(handle, text, clock);
  return true;
}

/** Puts a lock with `text` in place of whatever is at `path`, whole (rename(2)), with a heartbeat of now. */
async function replace(path: string, text: string, clock: Clock): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString("hex")}.new`;
  await write(await open(temp, "wx", 0o600), text, clock);
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function write(handle: FileHandle, text: string, clock: Clock): Promise<void> {
  try {
    await handle.writeFile(text);
    const now = clock.now();
    await handle.utimes(now, now);
  } finally {
    await handle.close();
  }
}

/** The lock's text and heartbeat, or null when there is none. An empty text: its holder is between creating and writing it. */
async function readLock(path: string): Promise<{ text: string; heartbeat: Date } | null> {
  try {
    const [text, { mtime }] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    return { text, heartbeat: mtime };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

function formatWait(ms: number): string {
  return ms >= 3_600_000 && ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${ms / 1000} s`;
}

/** "pid 7 on web-1 since 2026-…" from the lock's text (its token left out). */
function describeHolder(text: string): string {
  const described = text.trim().replace(/^[0-9a-f]{24} /, "");
  return described === "" ? "a holder that has not written its name yet" : /^\d+$/.test(described) ? `pid ${described}, an older gateway version` : described;
}
