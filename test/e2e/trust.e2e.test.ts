import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEBIAN_SYSTEM_TRUST_STORE } from "../../src/tls/system-trust-store.js";
import { loadLocalCa, type LocalCaCertificate } from "../../src/tls/trust-store.js";
import { launchBrowser } from "../support/browser.js";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

/**
 * `gateway trust` runs as a real other user (nobody), as a desktop user runs it without sudo:
 * the machine's system store is never changed (nobody cannot), and that path is what is tested.
 * The system store itself is tested against a folder in src/tls/system-trust-store.test.ts.
 */
const NOBODY = { uid: 65534, gid: 65534 };
const PAGE = "notebook stand-in behind the gateway";

describe("gateway trust: Chromium trusts the tls: internal site, and after untrust no longer does", { timeout: 120_000 }, () => {
  let dir: string;
  let home: string;
  let upstream: Server;
  let gateway: GatewayProcess;
  let ca: LocalCaCertificate;
  let origin: string;

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests run gateway trust as nobody: run them as root");
    dir = mkdtempSync(join(tmpdir(), "gateway-trust-"));
    chmodSync(dir, 0o755);
    home = join(dir, "home");
    mkdirSync(home);
    chownSync(home, NOBODY.uid, NOBODY.gid);
    upstream = createServer(notebookStandIn((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(`<title>${PAGE}</title>${PAGE}`)));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ./storage\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:${upstreamPort}\n    tls: internal\n`);
    origin = `https://localhost:${gateway.httpsPort}`;
    // The user who trusts is not the one serve runs as: let nobody read storage, as its owner would.
    assert.equal(spawnSync("chown", ["-R", "nobody:", join(dir, "storage")]).status, 0);
    ca = await loadLocalCa(join(dir, "storage", "ca", "root.crt"));
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh Chromium (new process and profile: Chromium caches verdicts) with HOME's NSS database only. */
  async function loadPage(profile: string): Promise<string> {
    const context = await launchBrowser(join(dir, profile), home, ["localhost"]);
    try {
      const page = await context.newPage();
      const response = await page.goto(`${origin}/`);
      assert.equal(response?.status(), 200);
      return await page.title();
    } finally {
      await context.close();
    }
  }

  const trust = (command: "trust" | "untrust") => runGateway([command, "--config", gateway.configPath], { HOME: home }, NOBODY);
  const systemLine = `system store ${DEBIAN_SYSTEM_TRUST_STORE.dir}`;
  const nssLine = () => `NSS database ${join(home, ".pki", "nssdb")} (Chromium, Chrome)`;

  it("before trust, Chromium refuses the certificate", async () => {
    await assert.rejects(loadPage("before"), /net::ERR_CERT_AUTHORITY_INVALID/);
  });

  it("trust without root: the system store is skipped with the command to run, the NSS database is made and trusted; Chromium loads the page", async () => {
    const r = await trust("trust");
    assert.equal(r.status, 1, `no root: the system store is not done\n${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, "");
    assert.equal(
      r.stdout,
      `local CA ${ca.path} (SHA-256 ${ca.fingerprint})\n` +
        `problem ${systemLine}: cannot change ${DEBIAN_SYSTEM_TRUST_STORE.dir} (permission denied); it needs root; run: sudo gateway trust --config ${gateway.configPath}\n` +
        `ok      ${nssLine()}: created it; added "${ca.trustName}", trusted to identify websites\n`,
    );
    assert.deepEqual(readdirSync(DEBIAN_SYSTEM_TRUST_STORE.dir).filter((f) => f.startsWith("notebook-gateway-")), []);
    assert.equal(await loadPage("trusted"), PAGE);
  });

  it("untrust removes it: a new Chromium refuses the certificate again; untrust again changes nothing", async () => {
    const r = await trust("untrust");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, `local CA ${ca.path} (SHA-256 ${ca.fingerprint})\nok      ${systemLine}: nothing to remove (no ${join(DEBIAN_SYSTEM_TRUST_STORE.dir, `${ca.trustName}.crt`)})\nok      ${nssLine()}: removed "${ca.trustName}"\n`);
    await assert.rejects(loadPage("untrusted"), /net::ERR_CERT_AUTHORITY_INVALID/);
    const again = await trust("untrust");
    assert.equal(again.status, 0);
    assert.match(again.stdout, new RegExp(`^ok {6}NSS database .*: nothing to remove$`, "m"));
  });
});
