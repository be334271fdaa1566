import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, it } from "node:test";
import { isProcessRunning } from "../../platform/process-status.js";
import { silentLogger } from "../../platform/logger.js";
import { HookChallenge, stopRunningHooks } from "./hook-challenge.js";

const dir = mkdtempSync(join(tmpdir(), "gateway-hook-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
  return path;
}

const REQUEST = { name: "a.example.com", value: "dGhlIHZhbHVl", allNames: ["a.example.com", "b.example.com"], remaining: 1 };

describe("HookChallenge: certbot's manual hook contract", () => {
  it("gives the auth hook certbot's variables, and the cleanup hook the auth hook's output too", async () => {
    const seen = join(dir, "seen");
    const auth = script("auth.sh", `echo "$CERTBOT_DOMAIN $CERTBOT_VALIDATION $CERTBOT_REMAINING_CHALLENGES $CERTBOT_ALL_DOMAINS \${CERTBOT_TOKEN-no-token}" > ${seen}.auth; echo "record-id-42"`);
    const cleanup = script("cleanup.sh", `echo "$CERTBOT_DOMAIN $CERTBOT_AUTH_OUTPUT" > ${seen}.cleanup`);
    const remove = await new HookChallenge({ kind: "hook", authHook: auth, cleanupHook: cleanup, timeoutMs: 10_000 }, silentLogger).present(REQUEST);
    assert.equal(readFileSync(`${seen}.auth`, "utf8"), "a.example.com dGhlIHZhbHVl 1 a.example.com,b.example.com no-token\n");
    assert.equal(existsSync(`${seen}.cleanup`), false, "cleanup runs after validation, not before");
    await remove();
    assert.equal(readFileSync(`${seen}.cleanup`, "utf8"), "a.example.com record-id-42\n");
  });

  it("a hook that exits 0 leaving a child in the background holding stdout succeeds at its exit", async () => {
    const auth = script("background.sh", `echo "record-7"\nsleep 30 &\necho $! > ${join(dir, "bg.pid")}`);
    const started = performance.now();
    await new HookChallenge({ kind: "hook", authHook: auth, cleanupHook: null, timeoutMs: 10_000 }, silentLogger).present(REQUEST);
    assert.ok(performance.now() - started < 5_000, `took ${Math.round(performance.now() - started)} ms: waited for the background child`);
    process.kill(Number(readFileSync(join(dir, "bg.pid"), "utf8")), "SIGKILL");
  });

  it("stopRunningHooks (run at process exit) ends a running hook with what it started; the order fails at once", async () => {
    const pidFile = join(dir, "stopped.pid");
    const auth = script("stopped.sh", `sleep 30 &\necho $! > ${pidFile}\nwait`);
    const presented = new HookChallenge({ kind: "hook", authHook: auth, cleanupHook: null, timeoutMs: 60_000 }, silentLogger).present(REQUEST);
    assert.equal(process.listeners("exit").includes(stopRunningHooks), true, "registered for the process's exit while a hook runs");
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(10);
    const sleeper = Number(readFileSync(pidFile, "utf8"));
    stopRunningHooks();
    await assert.rejects(presented, /exited with signal SIGKILL/);
    assert.equal(process.listeners("exit").includes(stopRunningHooks), false, "and no longer once none runs");
    for (let i = 0; i < 200 && isProcessRunning(sleeper); i++) await sleep(10);
    assert.equal(isProcessRunning(sleeper), false, "the hook's background sleep was stopped too");
  });

  it("a hook that outlives hook_timeout is stopped with what it started, and the error says it timed out", async () => {
    const pidFile = join(dir, "sleep.pid");
    const auth = script("slow.sh", `echo "waiting for the provider" >&2\nsleep 30 &\necho $! > ${pidFile}\nwait`);
    const started = performance.now();
    await assert.rejects(
      new HookChallenge({ kind: "hook", authHook: auth, cleanupHook: null, timeoutMs: 300 }, silentLogger).present(REQUEST),
      /acme\.dns\.auth_hook \S+slow\.sh for a\.example\.com: timed out after 0\.3 s and was stopped; it said: waiting for the provider; make it finish sooner, or raise acme\.dns\.hook_timeout/,
    );
    assert.ok(performance.now() - started < 5_000, "does not wait for the hook's children");
    const sleepPid = Number(readFileSync(pidFile, "utf8"));
    for (let i = 0; i < 40 && isProcessRunning(sleepPid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(isProcessRunning(sleepPid), false, "the hook's own children are stopped too");
  });

  it("a hook that is not executable says how to fix it", async () => {
    const path = join(dir, "plain.sh");
    writeFileSync(path, "#!/bin/sh\n", { mode: 0o600 });
    await assert.rejects(new HookChallenge({ kind: "hook", authHook: path, cleanupHook: null, timeoutMs: 10_000 }, silentLogger).present(REQUEST), /cannot run it \(EACCES\); check the path and that it is executable \(chmod \+x\)/);
  });
});
