import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { chown, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { canonicalIPv6 } from "../config/address-range.js";
import { readFileIfExists, writeFileAtomic } from "../platform/file-system.js";

/**
 * `gateway unlock` requests: a client address (canonical form), or ALL_ADDRESSES, to the ISO
 * time of the request. Failed logins of that address up to that time no longer count. A request
 * is a file of its own, written only by `gateway unlock` and read by `serve` (which watches it),
 * so neither process ever overwrites what the other wrote: `serve` alone writes the failures.
 */
export type LoginUnlocks = Readonly<Record<string, string>>;

/** The key of `gateway unlock --all`. */
export const ALL_ADDRESSES = "*";

/** Requests older than the longest login_guard.window (1d) can no longer clear anything. */
const UNLOCK_KEPT_MS = 86_400_000;

/** Where the login guard keeps its state under storage. */
export function loginStatePaths(storageDir: string): { readonly failures: string; readonly unlocks: string } {
  return { failures: join(storageDir, "state", "login-failures.json"), unlocks: join(storageDir, "state", "login-unlocks.json") };
}

/** The address as the guard compares it: IPv4-mapped IPv6 as IPv4, IPv6 compressed and lower case. */
export function canonicalClientAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return mapped;
  return isIP(address) === 6 ? canonicalIPv6(address) : address;
}

/** The unlock requests in `path`; none when it is missing. Throws when it cannot be read or parsed. */
export function readLoginUnlocks(path: string): LoginUnlocks {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as LoginUnlocks;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
}

/**
 * Adds an unlock request for `address` (or ALL_ADDRESSES) at `now`, dropping expired ones. Run
 * as root (`sudo gateway unlock`), the file is given to the owner of its folder, the service
 * user, who could not read a root-owned 0600 file.
 */
export async function requestLoginUnlock(path: string, address: string, now: Date): Promise<void> {
  const text = await readFileIfExists(path);
  const kept = Object.entries(text ? (JSON.parse(text) as LoginUnlocks) : {}).filter(([, at]) => now.getTime() - Date.parse(at) < UNLOCK_KEPT_MS);
  await writeFileAtomic(path, JSON.stringify({ ...Object.fromEntries(kept), [address]: now.toISOString() }), 0o600);
  if (process.getuid?.() === 0) {
    const owner = await stat(dirname(path));
    await chown(path, owner.uid, owner.gid);
  }
}
