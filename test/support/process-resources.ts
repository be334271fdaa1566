import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Open file descriptors of a running process (Linux /proc). */
export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of a running process in KiB (VmRSS in /proc/PID/status). */
export function residentSetKb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  if (line === undefined) throw new Error(`no VmRSS for PID ${pid}`);
  return Number(line.replace(/\D+/g, ""));
}

/**
 * The fd count once it has stopped moving: the same value `stableSamples` times in a row, 100 ms
 * apart (a closing socket, a keep-alive timer). Gives up after `timeoutMs` and returns the last
 * sample: this is a baseline, not an assertion.
 */
export async function settledFdCount(pid: number, stableSamples = 5, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = openFdCount(pid);
  let same = 1;
  while (same < stableSamples && Date.now() < deadline) {
    await sleep(100);
    const now = openFdCount(pid);
    same = now === last ? same + 1 : 1;
    last = now;
  }
  return last;
}

/** One TCP socket from /proc/net/tcp: endpoints, state and kernel queues. */
export interface TcpSocket {
  readonly inode: string;
  readonly local: string;
  readonly remote: string;
  readonly localPort: number;
  readonly remotePort: number;
  readonly state: string;
  readonly txQueue: number;
  readonly rxQueue: number;
}

const TCP_STATES: Readonly<Record<string, string>> = {
  "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
  "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
};

/** IPv4 TCP sockets on this host (loopback tests need no IPv6). */
export function tcpSockets(): TcpSocket[] {
  const endpoint = (hex: string): { text: string; port: number } => {
    const [addr = "", port = ""] = hex.split(":");
    const ip = [3, 2, 1, 0].map((i) => parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join(".");
    return { text: `${ip}:${parseInt(port, 16)}`, port: parseInt(port, 16) };
  };
  return readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1).filter((l) => l.trim()).map((line) => {
    const f = line.trim().split(/\s+/);
    const local = endpoint(f[1] ?? "");
    const remote = endpoint(f[2] ?? "");
    const [tx = "0", rx = "0"] = (f[4] ?? "").split(":");
    return { inode: f[9] ?? "", local: local.text, remote: remote.text, localPort: local.port, remotePort: remote.port, state: TCP_STATES[f[3] ?? ""] ?? (f[3] ?? "?"), txQueue: parseInt(tx, 16), rxQueue: parseInt(rx, 16) };
  });
}

/** What each fd of a process points at, sockets named by their TCP endpoints and state. */
export function describeFds(pid: number): Map<string, string> {
  const byInode = new Map(tcpSockets().map((s) => [s.inode, `tcp ${s.local} -> ${s.remote} ${s.state}`]));
  const fds = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    fds.set(fd, inode !== undefined ? (byInode.get(inode) ?? target) : target);
  }
  return fds;
}

/** The fds in `after` that were not in `before`, or point elsewhere now: for leak messages. */
export function newFds(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd}: ${target}`);
}

/** Which of `pids` holds the server side of the TCP connection whose client end is 127.0.0.1:`clientPort` (with workers: which worker accepted it). */
export function connectionHolder(pids: readonly number[], clientPort: number): number | undefined {
  return pids.find((pid) => [...describeFds(pid).values()].some((target) => target.includes(`-> 127.0.0.1:${clientPort} `)));
}
