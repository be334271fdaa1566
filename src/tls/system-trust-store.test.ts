import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fakeSystemTrustStore } from "../../test/support/fake-system-trust-store.js";
import type { GatewayError } from "../platform/gateway-error.js";
import { makeCaCertificate } from "./forge-certificates.js";
import { SystemTrustStore } from "./system-trust-store.js";
import { loadLocalCa, type LocalCaCertificate } from "./trust-store.js";

const dir = mkdtempSync(join(tmpdir(), "system-trust-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeSystemStore(name: string, updateScript?: string): { store: SystemTrustStore; certs: string; calls: () => string[] } {
  const { location, calls } = fakeSystemTrustStore(join(dir, name), updateScript);
  return { store: new SystemTrustStore(location), certs: location.dir, calls };
}

describe("SystemTrustStore", () => {
  let ca: LocalCaCertificate;

  before(async () => {
    const caPath = join(dir, "root.crt");
    writeFileSync(caPath, (await makeCaCertificate("notebook-gateway local CA", new Date())).certPem);
    ca = await loadLocalCa(caPath);
  });

  it("adds the CA as <trust name>.crt, 0644, and runs the update command once; again, changes nothing", async () => {
    const { store, certs, calls } = fakeSystemStore("add");
    writeFileSync(join(certs, "someone-else.crt"), "kept");
    const path = join(certs, `${ca.trustName}.crt`);
    assert.match(ca.trustName, /^notebook-gateway-[0-9a-f]{16}$/);
    assert.equal(await store.add(ca), `added ${path}; ran ${join(dir, "add", "update-ca-certificates")} --fresh`);
    assert.equal(readFileSync(path, "utf8"), ca.pem);
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.deepEqual(calls(), ["--fresh"]);
    assert.equal(await store.add(ca), `already there (${path})`);
    assert.deepEqual(calls(), ["--fresh"], "no second update");
    assert.equal(readFileSync(join(certs, "someone-else.crt"), "utf8"), "kept");
  });

  it("removes exactly that file and runs the update command; again, changes nothing", async () => {
    const { store, certs, calls } = fakeSystemStore("remove");
    writeFileSync(join(certs, "someone-else.crt"), "kept");
    const path = join(certs, `${ca.trustName}.crt`);
    assert.equal(await store.remove(ca), `nothing to remove (no ${path})`);
    assert.deepEqual(calls(), []);
    await store.add(ca);
    assert.match(await store.remove(ca), new RegExp(`^removed ${path}; ran `));
    assert.equal(existsSync(path), false);
    assert.deepEqual(calls(), ["--fresh", "--fresh"]);
    assert.equal(await store.remove(ca), `nothing to remove (no ${path})`);
    assert.deepEqual(calls(), ["--fresh", "--fresh"]);
    assert.equal(readFileSync(join(certs, "someone-else.crt"), "utf8"), "kept");
  });

  it("a failing update command is an error with its last words, and the folder is put back so a retry runs it again", async () => {
    const { store, certs } = fakeSystemStore("failing", 'echo "E: /etc/ssl/certs is read-only" >&2; exit 3');
    const said = (err: GatewayError): boolean => err.code === "tool.failed" && /failed: E: \/etc\/ssl\/certs is read-only$/.test(err.message);
    const path = join(certs, `${ca.trustName}.crt`);
    await assert.rejects(store.add(ca), said);
    assert.equal(existsSync(path), false);
    writeFileSync(path, ca.pem);
    await assert.rejects(store.remove(ca), said);
    assert.equal(readFileSync(path, "utf8"), ca.pem);
  });

  it("no such folder or update command: names the Debian package", async () => {
    const missingDir = new SystemTrustStore({ dir: join(dir, "nowhere"), updateCommand: ["update-ca-certificates"] });
    await assert.rejects(missingDir.add(ca), { code: "trust.no_system_store", message: `${join(dir, "nowhere")} not found; install it: apt-get install ca-certificates` });
    const { certs } = fakeSystemStore("no-command");
    const missingCommand = new SystemTrustStore({ dir: certs, updateCommand: [join(dir, "no-such-update")] });
    await assert.rejects(missingCommand.add(ca), { code: "tool.missing", message: `${join(dir, "no-such-update")} not found; install it: apt-get install ca-certificates` });
  });
});
