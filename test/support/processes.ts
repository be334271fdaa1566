import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { isProcessRunning } from "../../src/platform/process-status.js";

/** A process a test started; `stop()` ends it by PID and waits until it is really gone. */
export interface TestProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Processes started here and not stopped yet: what stopStartedProcesses() ends on an error or Ctrl-C. */
const started = new Set<TestProcess>();

export function startProcess(command: string, args: readonly string[], options: SpawnOptions = {}): TestProcess {
  const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"], ...options });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  const proc: TestProcess = {
    child,
    pid,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      if (!isProcessRunning(pid)) return;
      process.kill(pid, signal);
      for (let i = 0; i < 100 && isProcessRunning(pid); i++) await sleep(50);
      if (isProcessRunning(pid)) process.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && isProcessRunning(pid); i++) await sleep(50);
    },
  };
  started.add(proc);
  child.once("exit", () => started.delete(proc));
  return proc;
}

/** Stops, by PID, every process startProcess() started that is still running. */
export async function stopStartedProcesses(): Promise<void> {
  await Promise.all([...started].map((p) => p.stop()));
}


/**
 * Waits for every start to settle, then fails with the first error. Promise.all fails as soon as
 * one start does, while the others still run and would outlive the test; here each start records
 * what it started (e.g. `async () => (x = await startX())`) and after() stops what was recorded.
 */
export async function settleAll(starts: ReadonlyArray<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(starts)).find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Waits until `check` returns a value (not undefined), polling; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}

/** A port the OS says is free right now, on 127.0.0.1 (for programs that cannot report theirs). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits until a started server accepts connections on 127.0.0.1:`port`; fails early if it exits. */
export async function waitForPort(proc: TestProcess, port: number): Promise<void> {
  await waitFor(`port ${port} (output: ${proc.output().slice(-500)})`, () => {
    if (proc.child.exitCode !== null) throw new Error(`${proc.child.spawnfile} exited ${proc.child.exitCode}: ${proc.output()}`);
    return new Promise<true | undefined>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(undefined));
    });
  });
}

/**
 * How many TCP connections process `pid` holds on its local port `port` (accepted ones, for a
 * listening port), from /proc: what a fault test checks is back to zero once its clients are gone.
 */
export function connectionsOn(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return ""; // closed between readdir and readlink
      }
    })();
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const LISTEN = "0A";
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, , state, , , , , , inode] = fields.slice(1);
      if (!local || state === LISTEN || !inode || !inodes.has(inode)) continue;
      if (parseInt(local.split(":").pop() as string, 16) === port) count++;
    }
  }
  return count;
}
