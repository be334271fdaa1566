import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, it } from "node:test";
import type { Clock } from "../platform/clock.js";
import { acquireIssuingLock, DEFAULT_LOCK_TIMING, isLockStale, type LockTiming } from "./issuing-lock.js";

const dir = mkdtempSync(join(tmpdir(), "issuing-lock-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const STALE_MS = DEFAULT_LOCK_TIMING.staleMs;
/** Waits of 300 ms instead of 120 s, a settle of 100 ms; a heartbeat that never fires unless a test wants it. */
const SHORT: LockTiming = { ...DEFAULT_LOCK_TIMING, waitMs: 300, pollMs: 20, settleMs: 100, heartbeatMs: 3600_000 };

/** The time that judges heartbeats, moved by hand. */
function fakeClock(start = new Date("2026-06-01T12:00:00Z")): Clock & { current: Date } {
  return { current: start, now() { return this.current; }, sleep: () => new Promise(() => undefined) };
}

let n = 0;
/** A lock path of its own per test, with an optional lock file already there, its heartbeat at `heartbeat`. */
function lockPath(existing?: { text: string; heartbeat: Date }): string {
  const path = join(dir, `site-${n++}.lock`);
  if (existing) {
    writeFileSync(path, existing.text);
    utimesSync(path, existing.heartbeat, existing.heartbeat);
  }
  return path;
}

describe("isLockStale: only the heartbeat's age counts", () => {
  const now = new Date("2026-06-01T12:00:00Z");
  const ago = (ms: number): Date => new Date(now.getTime() - ms);
  for (const [heartbeat, stale, why] of [
    [ago(0), false, "just refreshed"],
    [ago(STALE_MS), false, "exactly at the bound"],
    [ago(STALE_MS + 1), true, "past the bound"],
    [ago(3600_000), true, "an hour old (kill -9)"],
    [new Date(now.getTime() + 5_000), false, "ahead of this clock (another host's skew)"],
  ] as const) {
    it(`${why}: ${stale ? "stale" : "held"}`, () => assert.equal(isLockStale(heartbeat, now, STALE_MS), stale));
  }
});

describe("acquireIssuingLock", () => {
  it("waits for a holder whose heartbeat is fresh, whatever PID it names (another PID namespace's PID 1, or a PID gone here)", async () => {
    const clock = fakeClock();
    for (const text of ["0123456789abcdef01234567 pid 1 on container-a since 2026-06-01T11:59:00.000Z\n", ""]) {
      const path = lockPath({ text, heartbeat: new Date(clock.current.getTime() - STALE_MS + 1_000) });
      const waited: string[] = [];
      await assert.rejects(acquireIssuingLock(path, "jupyter.example.com", clock, SHORT, { waiting: (holder) => waited.push(holder) }), (err: Error) => {
        assert.match(err.message, /^jupyter\.example\.com: another gateway process has been issuing this certificate for over 0\.3 s \(.*heartbeat 14 s ago, .*\); it is alive \(one dns-01 order may take up to acme.dns propagation_timeout plus hook_timeout per name\): let it finish and run this again, or stop it/);
        return true;
      });
      assert.equal(waited.length, 1, "waiting is told once");
      assert.equal(readFileSync(path, "utf8"), text, "the holder's lock is left alone");
    }
  });

  it("takes over a lock whose heartbeat is past the bound; the old holder finds out before installing, and its release leaves the new lock", async () => {
    const clock = fakeClock();
    const path = lockPath();
    const first = await acquireIssuingLock(path, "jupyter.example.com", clock, SHORT);
    assert.match(readFileSync(path, "utf8"), new RegExp(`^[0-9a-f]{24} pid ${process.pid} on \\S+ since 2026-06-01T12:00:00\\.000Z\\n$`));
    assert.equal(statSync(path).mtime.getTime(), clock.current.getTime(), "the heartbeat is written with the injected clock's time");
    await first.assertHeld();

    clock.current = new Date(clock.current.getTime() + STALE_MS + 1_000); // the holder froze: no heartbeat since
    const tookOver: Array<[string, number]> = [];
    const second = await acquireIssuingLock(path, "jupyter.example.com", clock, SHORT, { tookOver: (holder, ageMs) => tookOver.push([holder, ageMs]) });
    assert.equal(tookOver.length, 1);
    assert.match(tookOver[0]?.[0] ?? "", new RegExp(`^pid ${process.pid} on \\S+ since 2026-06-01T12:00:00\\.000Z$`));
    assert.equal(tookOver[0]?.[1], STALE_MS + 1_000);

    await assert.rejects(first.assertHeld(), (err: Error & { code?: string }) => {
      assert.equal(err.code, "store.lock_lost");
      assert.match(err.message, /another gateway process took the issuing lock over \(pid \d+ on .*\) because this one's heartbeat was over 15 s old; the certificate this process obtained is not installed/);
      return true;
    });
    const secondText = readFileSync(path, "utf8");
    await first.release();
    assert.equal(readFileSync(path, "utf8"), secondText, "the old holder's release does not remove the new holder's lock");
    await second.assertHeld();
    await second.release();
    assert.equal(existsSync(path), false);
  });

  it("the holder's heartbeat keeps the lock fresh by the injected clock, on a timer that does not keep the process alive", async () => {
    const clock = fakeClock();
    const path = lockPath();
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const held = await acquireIssuingLock(path, "jupyter.example.com", clock, { ...SHORT, heartbeatMs: 20 });
    assert.equal(timers(), before, "the heartbeat timer is unref'd");
    clock.current = new Date(clock.current.getTime() + 3600_000);
    for (let i = 0; i < 100 && statSync(path).mtime.getTime() !== clock.current.getTime(); i++) await sleep(10);
    assert.equal(statSync(path).mtime.getTime(), clock.current.getTime(), "the heartbeat moved the mtime to the clock's now");
    await assert.rejects(acquireIssuingLock(path, "jupyter.example.com", clock, SHORT), /another gateway process has been issuing/);
    await held.release();
  });

  it("judges a bare-PID lock (a gateway from before the heartbeat) by that version's rule: held while the PID runs here, for up to 10 min", async () => {
    const clock = fakeClock();
    const ago = (ms: number): Date => new Date(clock.current.getTime() - ms);
    const running = lockPath({ text: `${process.pid}\n`, heartbeat: ago(5 * 60_000) });
    await assert.rejects(acquireIssuingLock(running, "jupyter.example.com", clock, SHORT), (err: Error) => {
      assert.match(err.message, new RegExp(`another gateway process has been issuing this certificate for over 0\\.3 s \\(pid ${process.pid}, an older gateway version, heartbeat 300 s ago`));
      return true;
    });
    assert.equal(readFileSync(running, "utf8"), `${process.pid}\n`, "the older gateway's lock is left alone");
    for (const [text, age] of [[`${process.pid}\n`, 10 * 60_000 + 1_000], ["4194303\n", 1_000]] as const) {
      const path = lockPath({ text, heartbeat: ago(age) });
      const tookOver: string[] = [];
      const held = await acquireIssuingLock(path, "jupyter.example.com", clock, SHORT, { tookOver: (holder) => tookOver.push(holder) });
      assert.deepEqual(tookOver, [`pid ${text.trim()}, an older gateway version`], `${text.trim()} ${age} ms old`);
      await held.release();
    }
  });

  it("waits by default for a live holder as long as one dns-01 order may take (propagation and hook timeouts up to 1 h each)", () => {
    assert.ok(DEFAULT_LOCK_TIMING.waitMs >= 2 * 3600_000, `waitMs ${DEFAULT_LOCK_TIMING.waitMs}`);
  });

  it("of takers racing for one stale lock, exactly one gets it", async () => {
    const clock = fakeClock();
    const path = lockPath({ text: "4194303\n", heartbeat: new Date(clock.current.getTime() - 3600_000) });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => acquireIssuingLock(path, "jupyter.example.com", clock, SHORT)));
    const holders = results.filter((r) => r.status === "fulfilled");
    assert.equal(holders.length, 1, results.map((r) => (r.status === "rejected" ? String(r.reason) : "held")).join("\n"));
    await holders[0]?.value.release();
  });
});
