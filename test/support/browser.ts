import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { requireTool } from "./tools.js";

/** A browser profile whose NSS store trusts exactly the test CA (no certificate errors ignored). */
export function browserHome(dir: string, caPath: string): string {
  const certutil = requireTool("/usr/bin/certutil", "libnss3-tools");
  const home = join(dir, "browser-home");
  const nssdb = join(home, ".pki", "nssdb");
  mkdirSync(nssdb, { recursive: true });
  execFileSync(certutil, ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
  execFileSync(certutil, ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "notebook-gateway-test-ca", "-i", caPath]);
  return home;
}

/** Headless Chromium (never a downloaded browser) resolving `names` to 127.0.0.1. */
export async function launchBrowser(dir: string, home: string, names: readonly string[]): Promise<BrowserContext> {
  const executablePath = requireTool("/usr/bin/chromium", "chromium");
  return chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath,
    headless: true,
    ignoreHTTPSErrors: false,
    env: { ...process.env, HOME: home },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--host-resolver-rules=${names.map((n) => `MAP ${n} 127.0.0.1`).join(",")}`],
  });
}

