import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, readFile, stat, chmod } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { GatewayError } from "./gateway-error.js";

/**
 * Writes `data` to `path` so that readers see either the old file or the complete new one,
 * never a torn write: a temp file in the same folder, fsync, then rename(2) over the target.
 * `mode` applies from the first byte (keys are 0600 before they hold anything).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Creates `path` (and parents) and makes sure it is private to the owner (0700). */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) await chmod(path, 0o700);
}

/** Reads a UTF-8 file, or returns null when it does not exist. */
export async function readFileIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/**
 * Refuses a private key file that every user on the machine can read: the fix is a chmod, and
 * serving such a key means anyone with a shell here can impersonate the site.
 */
export async function assertKeyFilePrivate(path: string): Promise<void> {
  const { mode } = await stat(path);
  if ((mode & 0o004) !== 0) {
    throw new GatewayError("tls.key_readable", `${path}: the private key is readable by every user (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path} (or 640 with a group the gateway runs in)`);
  }
}
