import { access, constants, rm } from "node:fs/promises";
import { join } from "node:path";
import { readFileIfExists, writeFileAtomic } from "../platform/file-system.js";
import { GatewayError } from "../platform/gateway-error.js";
import { runTool } from "../platform/run-tool.js";
import type { LocalCaCertificate, TrustStore } from "./trust-store.js";

/** Where the system takes local CAs from, and the command that rebuilds its bundle from them. */
export interface SystemTrustStoreLocation {
  readonly dir: string;
  readonly updateCommand: readonly [string, ...string[]];
}

/**
 * Debian's ca-certificates: *.crt (PEM) in /usr/local/share/ca-certificates, then
 * update-ca-certificates rebuilds /etc/ssl/certs/ca-certificates.crt, which OpenSSL, curl,
 * Python and Node (with --use-openssl-ca) read.
 */
export const DEBIAN_SYSTEM_TRUST_STORE: SystemTrustStoreLocation = { dir: "/usr/local/share/ca-certificates", updateCommand: ["update-ca-certificates"] };

/** The system trust store: one file named for the CA, written and removed only by root. */
export class SystemTrustStore implements TrustStore {
  readonly description: string;

  constructor(private readonly location: SystemTrustStoreLocation) {
    this.description = `system store ${location.dir}`;
  }

  async add(ca: LocalCaCertificate): Promise<string> {
    const path = this.pathOf(ca);
    if ((await readFileIfExists(path)) === ca.pem) return `already there (${path})`;
    await this.assertWritable();
    await writeFileAtomic(path, ca.pem, 0o644);
    return `added ${path}; ${await this.update(() => rm(path))}`;
  }

  async remove(ca: LocalCaCertificate): Promise<string> {
    const path = this.pathOf(ca);
    if ((await readFileIfExists(path)) === null) return `nothing to remove (no ${path})`;
    await this.assertWritable();
    await rm(path);
    return `removed ${path}; ${await this.update(() => writeFileAtomic(path, ca.pem, 0o644))}`;
  }

  private pathOf(ca: LocalCaCertificate): string {
    return join(this.location.dir, `${ca.trustName}.crt`);
  }

  private async assertWritable(): Promise<void> {
    try {
      await access(this.location.dir, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new GatewayError("trust.no_system_store", `${this.location.dir} not found; install it: apt-get install ca-certificates`, { cause: err });
      if (code === "EACCES" || code === "EPERM") throw new GatewayError("trust.needs_root", `cannot change ${this.location.dir} (permission denied); it needs root`, { cause: err });
      throw new GatewayError("trust.system_store_unwritable", `cannot change ${this.location.dir} (${code})`, { cause: err });
    }
  }

  /** Rebuilds the bundle; when that fails, `undo` puts the folder back, so running the command again retries. */
  private async update(undo: () => Promise<void>): Promise<string> {
    const [command, ...args] = this.location.updateCommand;
    try {
      await runTool(command, args, "ca-certificates");
    } catch (err) {
      await undo();
      throw err;
    }
    return `ran ${this.location.updateCommand.join(" ")}`;
  }
}
