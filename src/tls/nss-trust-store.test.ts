import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requireTool } from "../../test/support/tools.js";
import { makeCaCertificate } from "./forge-certificates.js";
import { findNssTrustStores, NssTrustStore } from "./nss-trust-store.js";
import { loadLocalCa, type LocalCaCertificate } from "./trust-store.js";

const CERTUTIL = requireTool("/usr/bin/certutil", "libnss3-tools");
const dir = mkdtempSync(join(tmpdir(), "nss-trust-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** certutil -L of a database: nickname → trust flags. */
function listing(db: string): Record<string, string> {
  const lines = execFileSync(CERTUTIL, ["-d", `sql:${db}`, "-L"], { encoding: "utf8" }).split("\n").slice(4);
  return Object.fromEntries(lines.filter((l) => l.trim() !== "").map((l) => [l.slice(0, 60).trim(), l.slice(60).trim()]));
}

async function writeCa(name: string): Promise<LocalCaCertificate> {
  const path = join(dir, `${name}.crt`);
  writeFileSync(path, (await makeCaCertificate(name, new Date())).certPem);
  return loadLocalCa(path);
}

describe("NssTrustStore (real certutil)", () => {
  let ca: LocalCaCertificate;
  let other: LocalCaCertificate;

  before(async () => {
    [ca, other] = await Promise.all([writeCa("notebook-gateway local CA"), writeCa("another CA")]);
  });

  it("makes a missing database, adds the CA trusted for websites; again, changes nothing; remove takes exactly it out", async () => {
    const db = join(dir, "home", ".pki", "nssdb");
    const store = new NssTrustStore(db, "Chromium, Chrome", CERTUTIL);
    assert.equal(store.description, `NSS database ${db} (Chromium, Chrome)`);
    assert.equal(await store.remove(ca), "nothing to remove (no database)");
    assert.equal(existsSync(db), false, "remove makes no database");
    assert.equal(await store.add(ca), `created it; added "${ca.trustName}", trusted to identify websites`);
    execFileSync(CERTUTIL, ["-d", `sql:${db}`, "-A", "-t", "C,,", "-n", "another, with a comma", "-i", other.path]);
    assert.deepEqual(listing(db), { [ca.trustName]: "C,,", "another, with a comma": "C,," });
    assert.equal(await store.add(ca), `already trusted (as "${ca.trustName}")`);
    assert.equal(await store.remove(ca), `removed "${ca.trustName}"`);
    assert.deepEqual(listing(db), { "another, with a comma": "C,," });
    assert.equal(await store.remove(ca), "nothing to remove");
  });

  it("a copy the user added under another nickname is found by fingerprint, and left as it is", async () => {
    const db = join(dir, "mine");
    mkdirSync(db);
    execFileSync(CERTUTIL, ["-d", `sql:${db}`, "-N", "--empty-password"]);
    execFileSync(CERTUTIL, ["-d", `sql:${db}`, "-A", "-t", "CT,C,", "-n", "my gateway", "-i", ca.path]);
    const store = new NssTrustStore(db, "test", CERTUTIL);
    assert.equal(await store.add(ca), 'already trusted (as "my gateway")');
    assert.deepEqual(listing(db), { "my gateway": "CT,C," }, "its trust flags are not changed");
    assert.equal(await store.remove(ca), `nothing to remove; still trusted as "my gateway", which gateway trust did not add (certutil -d sql:${db} -D -n NICKNAME removes it)`);
    assert.deepEqual(listing(db), { "my gateway": "CT,C," });
  });

  it("without certutil: names the Debian package", async () => {
    const store = new NssTrustStore(join(dir, "no-certutil"), "test", join(dir, "certutil"));
    await assert.rejects(store.add(ca), { code: "tool.missing", message: `${join(dir, "certutil")} not found; install it: apt-get install libnss3-tools` });
  });

  it("finds ~/.pki/nssdb (even when missing) and the Firefox profiles that have a database", async () => {
    const home = join(dir, "firefox-home");
    const profiles = join(home, ".mozilla", "firefox");
    mkdirSync(join(profiles, "ab12.default-release"), { recursive: true });
    mkdirSync(join(profiles, "never-started"));
    writeFileSync(join(profiles, "profiles.ini"), "[General]\n");
    execFileSync(CERTUTIL, ["-d", `sql:${join(profiles, "ab12.default-release")}`, "-N", "--empty-password"]);
    assert.deepEqual((await findNssTrustStores(home, CERTUTIL)).map((s) => s.description), [
      `NSS database ${join(home, ".pki", "nssdb")} (Chromium, Chrome)`,
      `NSS database ${join(profiles, "ab12.default-release")} (Firefox profile ab12.default-release)`,
    ]);
    assert.deepEqual((await findNssTrustStores(join(dir, "empty-home"), CERTUTIL)).map((s) => s.description), [`NSS database ${join(dir, "empty-home", ".pki", "nssdb")} (Chromium, Chrome)`]);
  });
});
