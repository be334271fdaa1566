import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fakeSystemTrustStore } from "../../test/support/fake-system-trust-store.js";
import { runInProcess } from "../../test/support/in-process-cli.js";
import { requireTool } from "../../test/support/tools.js";
import { FileCertStore } from "../tls/cert-store.js";
import { makeCaCertificate } from "../tls/forge-certificates.js";
import { loadLocalCa, type LocalCaCertificate } from "../tls/trust-store.js";
import { trustCommand, type TrustDeps } from "./trust-command.js";

const CERTUTIL = requireTool("/usr/bin/certutil", "libnss3-tools");
const dir = mkdtempSync(join(tmpdir(), "trust-command-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A gateway.yaml with a `tls: internal` site and its storage in `name`/. */
function writeConfig(name: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `storage: ./${name}\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:8888\n    tls: internal\n`);
  return path;
}

describe("gateway trust / untrust (system store faked, NSS real)", () => {
  let configPath: string;
  let ca: LocalCaCertificate;

  before(async () => {
    configPath = writeConfig("storage");
    const store = new FileCertStore(join(dir, "storage"));
    await store.init();
    await store.saveCa(await makeCaCertificate("notebook-gateway local CA", new Date()));
    ca = await loadLocalCa(store.caCertPath);
  });

  it("trust reports each store, untrust removes what it added; both run again change nothing", async () => {
    const system = fakeSystemTrustStore(join(dir, "system"));
    const home = join(dir, "home");
    const trust: TrustDeps = { systemStore: system.location, homeDir: home, certutilPath: CERTUTIL };
    const run = (untrust: boolean) => runInProcess((deps) => trustCommand({ configPath, untrust }, deps, trust));
    const systemFile = join(system.location.dir, `${ca.trustName}.crt`);
    const ran = `ran ${system.location.updateCommand.join(" ")}`;
    const head = `local CA ${ca.path} (SHA-256 ${ca.fingerprint})\n`;
    const nss = `NSS database ${join(home, ".pki", "nssdb")} (Chromium, Chrome)`;

    const first = await run(false);
    assert.equal(first.out, `${head}ok      system store ${system.location.dir}: added ${systemFile}; ${ran}\nok      ${nss}: created it; added "${ca.trustName}", trusted to identify websites\n`);
    assert.equal(first.code, 0);
    const second = await run(false);
    assert.equal(second.out, `${head}ok      system store ${system.location.dir}: already there (${systemFile})\nok      ${nss}: already trusted (as "${ca.trustName}")\n`);
    assert.equal(second.code, 0);
    assert.deepEqual(system.calls(), ["--fresh"]);

    const untrust = await run(true);
    assert.equal(untrust.code, 0);
    assert.equal(untrust.out, `${head}ok      system store ${system.location.dir}: removed ${systemFile}; ${ran}\nok      ${nss}: removed "${ca.trustName}"\n`);
    const again = await run(true);
    assert.equal(again.out, `${head}ok      system store ${system.location.dir}: nothing to remove (no ${systemFile})\nok      ${nss}: nothing to remove\n`);
    assert.equal(again.code, 0);
    assert.deepEqual(system.calls(), ["--fresh", "--fresh"]);
  });

  it("without certutil the system store is still done; the NSS problem names the package; exit 1", async () => {
    const system = fakeSystemTrustStore(join(dir, "system-no-certutil"));
    const missing = join(dir, "no-such-certutil");
    const r = await runInProcess((deps) => trustCommand({ configPath, untrust: false }, deps, { systemStore: system.location, homeDir: join(dir, "home-no-certutil"), certutilPath: missing }));
    assert.equal(r.code, 1);
    assert.match(r.out, /^ok {6}system store .*: added /m);
    assert.match(r.out, new RegExp(`^problem NSS database .*: ${missing} not found; install it: apt-get install libnss3-tools$`, "m"));
  });

  it("no local CA yet: says which command makes it; exit 1, no store touched", async () => {
    const system = fakeSystemTrustStore(join(dir, "system-no-ca"));
    const noCa = writeConfig("empty-storage");
    const r = await runInProcess((deps) => trustCommand({ configPath: noCa, untrust: false }, deps, { systemStore: system.location, homeDir: join(dir, "home-no-ca"), certutilPath: CERTUTIL }));
    assert.deepEqual({ code: r.code, out: r.out }, { code: 1, out: `gateway trust: ${join(dir, "empty-storage", "ca", "root.crt")}: no local CA yet; gateway serve (or renew) makes it for the first site with tls: internal\n` });
    assert.deepEqual(system.calls(), []);
  });
});
