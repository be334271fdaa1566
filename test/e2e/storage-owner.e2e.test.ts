import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runGateway } from "../support/gateway-process.js";

/** A real other user: what the service user is to storage that `sudo gateway renew` wrote. */
const NOBODY = { uid: 65534, gid: 65534 };

describe("storage written by root, used by the service user", { timeout: 120_000 }, () => {
  let dir: string;
  let storage: string;
  let configPath: string;

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests make root-owned storage: run them as root");
    dir = mkdtempSync(join(tmpdir(), "gateway-storage-owner-"));
    chmodSync(dir, 0o755); // nobody must reach gateway.yaml; only storage/ is root's own
    storage = join(dir, "storage");
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const upstreamPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    configPath = join(dir, "gateway.yaml");
    writeFileSync(configPath, `listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ./storage\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:${upstreamPort}\n    tls: internal\n`, { mode: 0o644 });
    const renew = await runGateway(["renew", "--config", configPath]); // as root, like `sudo gateway renew`
    assert.equal(renew.status, 0, renew.stdout + renew.stderr);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  async function assertExplained(path: string): Promise<void> {
    const said = `storage ${path}: permission denied (owned by root); run: chown -R nobody: ${storage}`;
    for (const command of ["serve", "status", "renew"]) {
      const r = await runGateway([command, "--config", configPath], {}, NOBODY);
      // status answers as a Nagios plugin: 3, UNKNOWN (it cannot tell how the site is).
      assert.equal(r.status, command === "status" ? 3 : 1, `${command}: ${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.startsWith(command === "status" ? `gateway status: UNKNOWN: ${said}` : `gateway: ${said}`), `${command} says what is wrong and the fix: ${r.stderr}`);
      assert.doesNotMatch(r.stdout + r.stderr, /^\s+at /m, `${command}: no stack`);
    }
    const check = await runGateway(["check", "--config", configPath], {}, NOBODY);
    assert.equal(check.status, 1);
    assert.match(check.stdout, new RegExp(`^problem +${said.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
  }

  it("serve, status and renew say what is wrong and how to fix it, exit 1 (status: 3, unknown), no stack", async () => {
    await assertExplained(storage);
  });

  it("the same when only folders inside storage are root's (storage itself is the service user's)", async () => {
    chownSync(storage, NOBODY.uid, NOBODY.gid);
    await assertExplained(join(storage, "acme"));
  });

  it("after the chown it names, the service user runs them", async () => {
    assert.equal(spawnSync("chown", ["-R", "nobody:", storage]).status, 0);
    const status = await runGateway(["status", "--config", configPath], {}, NOBODY);
    assert.equal(status.status, 1, `a warning: nothing listens at the upstream\n${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /^localhost \(tls: internal\)/);
    assert.match(status.stdout, /^ {2}WARNING: +notebook not reachable$/m);
  });
});
