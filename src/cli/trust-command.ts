import { homedir } from "node:os";
import { resolve } from "node:path";
import { GatewayError } from "../platform/gateway-error.js";
import { FileCertStore } from "../tls/cert-store.js";
import { findNssTrustStores } from "../tls/nss-trust-store.js";
import { DEBIAN_SYSTEM_TRUST_STORE, SystemTrustStore, type SystemTrustStoreLocation } from "../tls/system-trust-store.js";
import { loadLocalCa, type TrustStore } from "../tls/trust-store.js";
import type { CliDeps } from "./cli-deps.js";
import { loadConfigOrReport } from "./config-loading.js";
import { ExitCode } from "./exit-code.js";

export interface TrustArgs {
  readonly configPath: string;
  /** `gateway untrust`: remove what `gateway trust` added. */
  readonly untrust: boolean;
}

/** Where the trust stores of this machine are; tests point them into a temp dir. */
export interface TrustDeps {
  readonly systemStore: SystemTrustStoreLocation;
  /** The home whose NSS databases (Chromium's ~/.pki/nssdb, Firefox's profiles) get the CA. */
  readonly homeDir: string;
  readonly certutilPath: string;
}

export function systemTrustDeps(): TrustDeps {
  return { systemStore: DEBIAN_SYSTEM_TRUST_STORE, homeDir: homedir(), certutilPath: "certutil" };
}

/**
 * `gateway trust` / `gateway untrust`, like `caddy trust`: adds the local CA of `tls: internal`
 * (storage/ca/root.crt) to the system store and to the user's NSS databases, or removes it, and
 * prints what each store did. Without root the system store is left as it is (the message says
 * what to run) and the NSS databases are still changed. Exit 1 when a store could not be changed.
 */
export async function trustCommand(args: TrustArgs, deps: CliDeps, trust: TrustDeps = systemTrustDeps()): Promise<ExitCode> {
  const config = await loadConfigOrReport(args.configPath, deps);
  if (typeof config === "number") return config;
  const command = args.untrust ? "untrust" : "trust";
  const ca = await loadLocalCa(new FileCertStore(config.storageDir).caCertPath).catch((err: unknown) => {
    if (err instanceof GatewayError) return err;
    throw err;
  });
  if (ca instanceof GatewayError) {
    deps.stderr.write(`gateway ${command}: ${ca.message}\n`);
    return ExitCode.Failed;
  }
  deps.stdout.write(`local CA ${ca.path} (SHA-256 ${ca.fingerprint})\n`);
  const stores: TrustStore[] = [new SystemTrustStore(trust.systemStore), ...(await findNssTrustStores(trust.homeDir, trust.certutilPath))];
  let failed = false;
  for (const store of stores) {
    try {
      deps.stdout.write(`ok      ${store.description}: ${await (args.untrust ? store.remove(ca) : store.add(ca))}\n`);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      failed = true;
      const remedy = err.code === "trust.needs_root" ? `; run: sudo gateway ${command} --config ${resolve(args.configPath)}` : "";
      deps.stdout.write(`problem ${store.description}: ${err.message}${remedy}\n`);
    }
  }
  return failed ? ExitCode.Failed : ExitCode.Ok;
}
