import { constants } from "node:fs";
import { access, readdir, rm, stat } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { assertKeyFilePrivate, ensurePrivateDir, readFileIfExists, writeFileAtomic } from "../platform/file-system.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError } from "../platform/logger.js";
import { systemClock, type Clock } from "../platform/clock.js";
import { parseBundle, type CertificateBundle } from "./certificate-bundle.js";
import { acquireIssuingLock, DEFAULT_LOCK_TIMING, type IssuingLock, type LockObserver, type LockTiming } from "./issuing-lock.js";

/** A CA certificate and its key, PEM. */
export interface CaKeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Certificates, keys and the local CA in the storage folder (0700). Each bundle is one file
 * (key, then chain; 0600) replaced by rename(2), so a reader never sees a key from one issuance
 * with a certificate from another, and a crash mid-write leaves the previous bundle intact.
 *
 *   certificates/<name>.pem   key + leaf + chain of a site
 *   ca/root.crt  ca/root.key  the local CA for `tls: internal` (trust root.crt on your devices)
 *   acme/challenges/<token>   HTTP-01 answers, shared by `serve` and `renew`
 *   acme/alpn/<name>.pem      TLS-ALPN-01 answer certificates (key + cert)
 *   acme/account.key          the ACME account key, made once
 *   acme/accounts.json        the account URL at each ACME directory
 *   state/<name>.json         renewal state: last attempt, last error, retry-after, ARI window
 *   locks/<name>.lock         held while one process issues for a name; its mtime is the holder's heartbeat
 */
export class FileCertStore {
  constructor(
    readonly dir: string,
    /** Judges the issuing lock's heartbeat (time decides who may take it over). */
    private readonly clock: Clock = systemClock,
    private readonly lockTiming: LockTiming = DEFAULT_LOCK_TIMING,
  ) {}

  async init(): Promise<void> {
    await ensurePrivateDir(this.dir);
    await ensurePrivateDir(join(this.dir, "certificates"));
    await ensurePrivateDir(join(this.dir, "ca"));
    await ensurePrivateDir(this.challengeDir);
    await ensurePrivateDir(join(this.dir, "acme", "alpn"));
    await ensurePrivateDir(join(this.dir, "state"));
    await ensurePrivateDir(join(this.dir, "locks"));
  }

  bundlePath(name: string): string {
    return join(this.dir, "certificates", `${fileName(name)}.pem`);
  }

  async load(name: string): Promise<CertificateBundle | null> {
    const path = this.bundlePath(name);
    const text = await readFileIfExists(path);
    if (text === null) return null;
    await assertKeyFilePrivate(path);
    return parseBundle(text, text, path);
  }

  async save(name: string, bundle: CertificateBundle): Promise<void> {
    await writeFileAtomic(this.bundlePath(name), bundle.keyPem + bundle.certPem, 0o600);
  }

  get caCertPath(): string {
    return join(this.dir, "ca", "root.crt");
  }

  async loadCa(): Promise<CaKeyPair | null> {
    const keyPem = await readFileIfExists(join(this.dir, "ca", "root.key"));
    const certPem = await readFileIfExists(this.caCertPath);
    return keyPem && certPem ? { certPem, keyPem } : null;
  }

  /** Key first: a crash in between leaves no certificate, so the next start makes a fresh pair. */
  async saveCa(ca: CaKeyPair): Promise<void> {
    await writeFileAtomic(join(this.dir, "ca", "root.key"), ca.keyPem, 0o600);
    await writeFileAtomic(this.caCertPath, ca.certPem, 0o644);
  }

  get challengeDir(): string {
    return join(this.dir, "acme", "challenges");
  }

  /** The key authorization for an HTTP-01 token, or null (RFC 8555 §8.3: tokens are base64url). */
  async readChallenge(token: string): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(token)) return null;
    return readFileIfExists(join(this.challengeDir, token));
  }

  async putChallenge(token: string, keyAuthorization: string): Promise<void> {
    await writeFileAtomic(join(this.challengeDir, token), keyAuthorization, 0o600);
  }

  async removeChallenge(token: string): Promise<void> {
    await rm(join(this.challengeDir, token), { force: true });
  }

  /** Key + certificate answering TLS-ALPN-01 for `name` (RFC 8737), or null. */
  async readAlpnCertificate(name: string): Promise<string | null> {
    return readFileIfExists(join(this.dir, "acme", "alpn", `${fileName(name)}.pem`));
  }

  async putAlpnCertificate(name: string, keyAndCertPem: string): Promise<void> {
    await writeFileAtomic(join(this.dir, "acme", "alpn", `${fileName(name)}.pem`), keyAndCertPem, 0o600);
  }

  async removeAlpnCertificate(name: string): Promise<void> {
    await rm(join(this.dir, "acme", "alpn", `${fileName(name)}.pem`), { force: true });
  }

  /** The ACME account key (PEM), created by `create` on first use and kept (0600). */
  async accountKey(create: () => Promise<string>): Promise<string> {
    const path = join(this.dir, "acme", "account.key");
    const existing = await readFileIfExists(path);
    if (existing) return existing;
    const key = await create();
    await writeFileAtomic(path, key, 0o600);
    return key;
  }

  /** The account URL registered at an ACME directory with the account key, or null. */
  async accountUrl(directoryUrl: string): Promise<string | null> {
    const text = await readFileIfExists(join(this.dir, "acme", "accounts.json"));
    return text ? ((JSON.parse(text) as Record<string, string>)[directoryUrl] ?? null) : null;
  }

  async saveAccountUrl(directoryUrl: string, accountUrl: string): Promise<void> {
    const path = join(this.dir, "acme", "accounts.json");
    const text = await readFileIfExists(path);
    const accounts = { ...(text ? (JSON.parse(text) as Record<string, string>) : {}), [directoryUrl]: accountUrl };
    await writeFileAtomic(path, `${JSON.stringify(accounts, null, 2)}\n`, 0o600);
  }

  async loadState(name: string): Promise<RenewalState> {
    const path = join(this.dir, "state", `${fileName(name)}.json`);
    const text = await readFileIfExists(path);
    if (!text) return {};
    try {
      return JSON.parse(text) as RenewalState;
    } catch (cause) {
      throw new GatewayError("store.state_unreadable", `${path}: not valid JSON (${describeError(cause)}); delete it, the next renewal attempt writes a new one`, { cause });
    }
  }

  async saveState(name: string, state: RenewalState): Promise<void> {
    await writeFileAtomic(join(this.dir, "state", `${fileName(name)}.json`), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  /**
   * Takes the issuing lock for `name` so that `serve`, cron's `renew`, and a `renew` in another
   * container on the same storage never order at once. Its holder refreshes a heartbeat; a lock
   * whose heartbeat stopped (kill -9) is taken over after `lockTiming.staleMs` (issuing-lock.ts).
   */
  lock(name: string, observer?: LockObserver): Promise<IssuingLock> {
    return acquireIssuingLock(join(this.dir, "locks", `${fileName(name)}.lock`), name, this.clock, this.lockTiming, observer);
  }
}

/**
 * Why this process cannot use the storage folder `dir`, or null. The usual cause is storage that
 * `sudo gateway renew` wrote and a gateway that runs as another user: the first folder in it this
 * user cannot enter and write, or file it cannot read, is named with its owner and the chown that
 * fixes it. A `dir` that does not exist yet must be creatable in its nearest existing parent.
 * `gateway check` reports it; `serve`, `renew` and `status` refuse to start with it.
 */
export async function findStorageProblem(dir: string): Promise<GatewayError | null> {
  let existing = dir;
  while (!(await exists(existing)) && dirname(existing) !== existing) existing = dirname(existing);
  const user = currentUserName();
  if (existing !== dir) {
    const problem = await accessProblem(existing, constants.W_OK | constants.X_OK);
    return problem === null ? null : new GatewayError("store.not_accessible", `storage ${dir}: cannot be created in ${existing} (${problem}); create it for the gateway's user (install -d -o ${user} -m 700 ${dir}), or change storage in gateway.yaml`);
  }
  const found = await firstInaccessible(dir, true);
  if (!found) return null;
  const remedy = /^permission denied/.test(found.problem) ? `run: chown -R ${user}: ${dir}` : "fix it, or change storage in gateway.yaml";
  return new GatewayError("store.not_accessible", `storage ${found.path}: ${found.problem}; ${remedy}`);
}

async function firstInaccessible(path: string, isFolder: boolean): Promise<{ path: string; problem: string } | null> {
  const problem = await accessProblem(path, isFolder ? constants.R_OK | constants.W_OK | constants.X_OK : constants.R_OK);
  if (problem) return { path, problem };
  if (!isFolder) return null;
  const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (!entry.isDirectory() && !entry.isFile()) continue;
    const found = await firstInaccessible(join(path, entry.name), entry.isDirectory());
    if (found) return found;
  }
  return null;
}

/** "permission denied (owned by root)", another errno, or null when `mode` is allowed. */
async function accessProblem(path: string, mode: number): Promise<string | null> {
  try {
    await access(path, mode);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") return `${code}`;
    const uid = await stat(path).then((s) => s.uid, () => null); // null: a parent cannot be entered
    return uid === null ? "permission denied" : `permission denied (owned by ${uid === 0 ? "root" : `uid ${uid}`})`;
  }
}

/** False only for a path that is known not to exist; access() then says what else is wrong. */
async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, (err: NodeJS.ErrnoException) => err.code !== "ENOENT");
}

/** The name to chown to; a uid without a passwd entry (a container's --user) has none. */
function currentUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return "<the gateway's user>";
  }
}

/** What the gateway remembers about a site's renewals, for scheduling and `gateway status`. */
export interface RenewalState {
  /** ISO time of the last attempt to obtain or renew. */
  readonly lastAttempt?: string;
  /** One-line reason the last attempt failed; absent after a success. */
  readonly lastError?: string;
  /** ISO time before which no new attempt is made (a CA's Retry-After, or backoff after failures). */
  readonly retryAfter?: string;
  /** ISO time `serve` tries again after the last failure (absent when `renew` failed: cron decides). */
  readonly nextAttempt?: string;
  /** Which CA issued the certificate the last success installed ("local CA", or the ACME directory URL: the primary's or a fallback's), and its fingerprint. */
  readonly issued?: { readonly by: string; readonly fingerprint: string };
  /** ACME Renewal Information window (RFC 9773) and when to ask again. */
  readonly ari?: { readonly start: string; readonly end: string; readonly chosen: string; readonly fetchAgainAfter: string; readonly fingerprint: string };
}

function fileName(name: string): string {
  return name.replace(/[^a-z0-9.-]/gi, "_");
}

