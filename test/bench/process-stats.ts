import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** A process and every descendant (nginx workers, a shell's child), read from /proc. */
export function processTree(pid: number): number[] {
  const children: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(" ").filter(Boolean)) children.push(Number(child));
    } catch {
      // the thread ended meanwhile
    }
  }
  return [pid, ...children.flatMap(processTree)];
}

/** CPU time (user + system) the tree has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      // Fields after the command name (which may hold spaces): utime is the 14th field, stime the 15th.
      const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return (ticks / TICKS_PER_SECOND) * 1e6;
}

/** Resident memory of the tree, in KiB. */
export function rssKiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      kib += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kib;
}
