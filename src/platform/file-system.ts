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
 * The one rule for files holding a secret (TLS private keys, EAB HMAC keys, TSIG keys): no
 * other user may read, write or run it, and no group may write it; group read is allowed, for
 * keys like /etc/letsencrypt's 0640 root:ssl-cert. Returns what is wrong and the fix, or
 * undefined when `mode` is private enough.
 */
export function keyFileModeProblem(path: string, mode: number): string | undefined {
  if ((mode & 0o027) === 0) return undefined;
  return `${path} is open to other users (mode ${(mode & 0o777).toString(8)}), and it holds a secret; run chmod 600 ${path} (or 640 with a group the gateway runs in)`;
}

/** Refuses a private key file open to other users (keyFileModeProblem): serving it means anyone with a shell here can impersonate the site. */
export async function assertKeyFilePrivate(path: string): Promise<void> {
  const problem = keyFileModeProblem(path, (await stat(path)).mode);
  if (problem) throw new GatewayError("tls.key_readable", problem);
}
