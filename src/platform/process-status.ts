import { readFileSync } from "node:fs";

/**
 * Whether process `pid` still runs. A zombie (exited, not reaped yet) counts as gone, but only
 * once every thread has exited: a process whose main thread is done while other threads still
 * finish (Python and Node shutting down) shows State Z with Threads > 1, and still holds its
 * files, locks and listening sockets.
 */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return false; // reaped meanwhile
  }
  return !/^State:\s+Z/m.test(status) || !/^Threads:\s+1$/m.test(status);
}
