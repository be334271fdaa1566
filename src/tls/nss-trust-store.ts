import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { runTool } from "../platform/run-tool.js";
import { fingerprintOf, type LocalCaCertificate, type TrustStore } from "./trust-store.js";

/** certutil's trust flags for SSL,S/MIME,code signing: "C" = a CA trusted to issue server certificates. */
const TRUSTED_FOR_WEBSITES = "C,,";

/**
 * A user's NSS database (sql: format, cert9.db), the store Chromium, Chrome and Firefox take
 * user-added CAs from on Linux; changed with certutil (libnss3-tools). The CA is found by its
 * fingerprint, so a copy the user added under another nickname is reported and left alone.
 */
export class NssTrustStore implements TrustStore {
  readonly description: string;

  constructor(
    private readonly dir: string,
    browsers: string,
    private readonly certutilPath: string,
  ) {
    this.description = `NSS database ${dir} (${browsers})`;
  }

  async add(ca: LocalCaCertificate): Promise<string> {
    const created = !this.exists();
    if (created) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await this.certutil("-N", "--empty-password");
    }
    const [held] = await this.nicknamesHolding(ca);
    if (held !== undefined) return `already trusted (as "${held}")`;
    await this.certutil("-A", "-t", TRUSTED_FOR_WEBSITES, "-n", ca.trustName, "-i", ca.path);
    return `${created ? "created it; " : ""}added "${ca.trustName}", trusted to identify websites`;
  }

  async remove(ca: LocalCaCertificate): Promise<string> {
    if (!this.exists()) return "nothing to remove (no database)";
    const held = await this.nicknamesHolding(ca);
    if (held.includes(ca.trustName)) await this.certutil("-D", "-n", ca.trustName);
    const done = held.includes(ca.trustName) ? `removed "${ca.trustName}"` : "nothing to remove";
    const others = held.filter((n) => n !== ca.trustName);
    return others.length === 0 ? done : `${done}; still trusted as ${others.map((n) => `"${n}"`).join(", ")}, which gateway trust did not add (certutil -d sql:${this.dir} -D -n NICKNAME removes it)`;
  }

  private exists(): boolean {
    return existsSync(join(this.dir, "cert9.db"));
  }

  /** Nicknames under which this database holds the CA (by fingerprint). */
  private async nicknamesHolding(ca: LocalCaCertificate): Promise<string[]> {
    const held: string[] = [];
    for (const nickname of parseNicknames(await this.certutil("-L"))) {
      const pems = (await this.certutil("-L", "-n", nickname, "-a")).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
      if (pems.some((pem) => fingerprintOf(pem) === ca.fingerprint)) held.push(nickname);
    }
    return held;
  }

  private certutil(...args: string[]): Promise<string> {
    return runTool(this.certutilPath, ["-d", `sql:${this.dir}`, ...args], "libnss3-tools");
  }
}

/**
 * The NSS databases of the user whose home is `home`: ~/.pki/nssdb (Chromium and Chrome; made
 * when missing) and each Firefox profile's (only those Firefox made: one without cert9.db has
 * not been started yet).
 */
export async function findNssTrustStores(home: string, certutilPath: string): Promise<NssTrustStore[]> {
  const firefoxDir = join(home, ".mozilla", "firefox");
  const profiles = existsSync(firefoxDir) ? await readdir(firefoxDir, { withFileTypes: true }) : [];
  return [
    new NssTrustStore(join(home, ".pki", "nssdb"), "Chromium, Chrome", certutilPath),
    ...profiles
      .filter((p) => p.isDirectory() && existsSync(join(firefoxDir, p.name, "cert9.db")))
      .map((p) => new NssTrustStore(join(firefoxDir, p.name), `Firefox profile ${p.name}`, certutilPath)),
  ];
}

/** Nicknames from `certutil -L`: one per line after the header, the trust flags (`C,,`, `u,u,u`) in the last column. */
function parseNicknames(listing: string): string[] {
  return listing
    .split("\n")
    .map((line) => /^(.*\S)\s+(\w*,\w*,\w*)\s*$/.exec(line)?.[1])
    .filter((n): n is string => n !== undefined);
}
