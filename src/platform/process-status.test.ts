import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { isProcessRunning } from "./process-status.js";

describe("isProcessRunning", () => {
  it("counts a process whose main thread exited as running while another thread still runs", async () => {
    // The main thread ends (pthread_exit) while a second thread sleeps 1.5 s: what Jupyter does
    // while shutting down, with its listening socket still open.
    const child = spawn("/usr/bin/python3", ["-c", "import ctypes, threading, time; threading.Thread(target=time.sleep, args=(1.5,)).start(); ctypes.CDLL(None).pthread_exit(None)"], { stdio: "ignore" });
    const pid = child.pid;
    assert.ok(pid);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let status = "";
    for (let i = 0; i < 40 && !/^State:\s+Z/m.test(status); i++) {
      await sleep(25);
      status = readFileSync(`/proc/${pid}/status`, "utf8");
    }
    assert.match(status, /^State:\s+Z/m, "the main thread has exited");
    assert.match(status, /^Threads:\s+2$/m);
    assert.equal(isProcessRunning(pid), true);
    await exited;
    assert.equal(isProcessRunning(pid), false);
  });

  it("counts an exited, not yet reaped process (a zombie with no threads left) as gone", async () => {
    const child = spawn("/usr/bin/python3", ["-c", "import os, subprocess, time; p = subprocess.Popen(['true']); print(p.pid, flush=True); time.sleep(3)"], { stdio: ["ignore", "pipe", "ignore"] });
    const pid = Number(await new Promise<string>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(d.toString()))));
    for (let i = 0; i < 40 && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8")); i++) await sleep(25);
    assert.equal(isProcessRunning(pid), false);
    assert.equal(isProcessRunning(process.pid), true);
    child.kill();
  });
});
