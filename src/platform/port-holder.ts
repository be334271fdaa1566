import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** A process as /proc shows it to this user. */
export interface ProcessInfo {
  /** Null when the process is hidden from this user (another user's, without root). */
  readonly pid: number | null;
  /** Its command line (argv), empty when hidden. */
  readonly argv: readonly string[];
  /** Its working directory, to resolve relative paths in argv; null when hidden. */
  readonly cwd: string | null;
  /** Its parent's PID (the gateway that started an ssh), null when hidden. */
  readonly parentPid: number | null;
}

/** The process listening on a TCP port. */
export interface PortHolder extends ProcessInfo {
  /** Owner of the listening socket (/proc/net/tcp shows it to everyone). */
  readonly uid: number;
}

const LISTEN = "0A";

/**
 * Who listens on TCP `port` (any address, IPv4 or IPv6): the socket's inode from /proc/net/tcp,
 * then the process holding that inode among /proc/<pid>/fd. Null when nothing listens there, or
 * /proc cannot tell (another network namespace).
 */
export function findPortHolder(port: number): PortHolder | null {
  const socket = listeningSocket(port);
  if (!socket) return null;
  const pid = processHolding(socket.inode);
  return { uid: socket.uid, ...(pid === null ? HIDDEN : readProcess(pid)) };
}

const HIDDEN: ProcessInfo = { pid: null, argv: [], cwd: null, parentPid: null };

/** Process `pid`'s command line, working directory and parent, as far as this user may read them. */
export function readProcess(pid: number): ProcessInfo {
  const read = (what: string): string | null => {
    try {
      return what === "cwd" ? readlinkSync(`/proc/${pid}/cwd`) : readFileSync(`/proc/${pid}/${what}`, "utf8");
    } catch {
      return null;
    }
  };
  const parentPid = Number(/^PPid:\s+(\d+)$/m.exec(read("status") ?? "")?.[1] ?? NaN);
  return { pid, argv: (read("cmdline") ?? "").split("\0").filter(Boolean), cwd: read("cwd"), parentPid: Number.isNaN(parentPid) ? null : parentPid };
}

/** "pid 1234 (nginx: master process /usr/sbin/nginx)", or the socket's owner when the process is hidden. */
export function describePortHolder(holder: PortHolder): string {
  if (holder.pid === null) return `a process of ${holder.uid === 0 ? "root" : `uid ${holder.uid}`} (run gateway check as root to see which)`;
  const command = holder.argv.join(" ");
  return `pid ${holder.pid} (${command.length > 80 ? `${command.slice(0, 77)}...` : command})`;
}

function listeningSocket(port: number): { inode: string; uid: number } | null {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, local, , state, , , , uid, , inode] = line.trim().split(/\s+/);
      if (state !== LISTEN || !local || !inode || inode === "0") continue;
      if (parseInt(local.split(":").pop() ?? "", 16) === port) return { inode, uid: Number(uid) };
    }
  }
  return null;
}

function processHolding(inode: string): number | null {
  const target = `socket:[${inode}]`;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}
