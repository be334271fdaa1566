import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { isProcessRunning } from "../../src/platform/process-status.js";
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

/** How every test runs Debian's Chromium: headless, trusting what `home` trusts, `names` on 127.0.0.1. */
function chromiumOptions(home: string, names: readonly string[]) {
  return {
    executablePath: requireTool("/usr/bin/chromium", "chromium"),
    headless: true,
    env: { ...process.env, HOME: home },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--host-resolver-rules=${names.map((n) => `MAP ${n} 127.0.0.1`).join(",")}`],
  };
}

/** Headless Chromium (never a downloaded browser) resolving `names` to 127.0.0.1. */
export async function launchBrowser(dir: string, home: string, names: readonly string[]): Promise<BrowserContext> {
  return chromium.launchPersistentContext(join(dir, "profile"), { ...chromiumOptions(home, names), ignoreHTTPSErrors: false });
}

/** A Chromium whose PID the test knows, so it can kill it the way a crash or the OOM killer would. */
export interface BrowserProcess {
  readonly browser: Browser;
  readonly pid: number;
  /** A fresh context (no cookies), checking certificates against the test CA only. */
  newContext(): Promise<BrowserContext>;
  /** SIGKILL to the browser's main process; resolves once it is gone. */
  kill(): Promise<void>;
  /** Closes it if it still runs, and ends what is left of it. */
  close(): Promise<void>;
}

export async function launchBrowserProcess(home: string, names: readonly string[]): Promise<BrowserProcess> {
  // The control WebSocket listens on loopback only.
  const server = await chromium.launchServer({ ...chromiumOptions(home, names), host: "127.0.0.1" });
  const pid = server.process().pid;
  if (pid === undefined) throw new Error("Chromium started without a PID");
  const browser = await chromium.connect(server.wsEndpoint());
  return {
    browser,
    pid,
    newContext: () => browser.newContext({ ignoreHTTPSErrors: false }),
    async kill() {
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && isProcessRunning(pid); i++) await sleep(50);
      if (isProcessRunning(pid)) throw new Error(`Chromium (PID ${pid}) still runs 5 s after SIGKILL`);
    },
    async close() {
      if (browser.isConnected()) await browser.close();
      await server.close();
    },
  };
}
