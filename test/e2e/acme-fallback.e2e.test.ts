import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { scrapeMetric } from "../support/gateway-metrics.js";
import { loggedEvents, runGateway, startGateway } from "../support/gateway-process.js";
import { startPebble, type Pebble } from "../support/pebble.js";
import { freePort, settleAll } from "../support/processes.js";
import { servedCertificate } from "../support/tls-probe.js";

const SITE = "jupyter.example.test";
const KID = "gateway-e2e";

/**
 * A primary CA and a fallback that requires External Account Binding (as ZeroSSL and Google Trust
 * Services do), both real pebble: the primary is stopped (its port then refuses connections) and
 * started again on the same port.
 */
describe("acme.fallback: a second CA, with External Account Binding", { timeout: 180_000 }, () => {
  let dir: string;
  let primary: Pebble | undefined;
  let fallback: Pebble | undefined;
  let ports: { https: number; http: number };
  let env: Record<string, string>;
  const hmacKey = randomBytes(32).toString("base64url");

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-fallback-"));
    ports = { https: await freePort(), http: await freePort() };
    await settleAll([
      (async () => (primary = await startPebble(join(dir, "primary"), { httpPort: ports.http, tlsPort: ports.https })))(),
      (async () => (fallback = await startPebble(join(dir, "fallback"), { httpPort: ports.http, tlsPort: ports.https, eabKeys: { [KID]: hmacKey } })))(),
    ]);
    const cas = join(dir, "cas.pem"); // NODE_EXTRA_CA_CERTS takes one file: both pebbles' HTTPS CAs
    writeFileSync(cas, `${primary?.httpsCaPem ?? ""}${fallback?.httpsCaPem ?? ""}`);
    env = { NODE_EXTRA_CA_CERTS: cas };
  });

  after(async () => {
    await Promise.all([primary?.stop(), fallback?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** gateway.yaml with its own storage and EAB key file (mode 0600, holding `key`; null: no eab). */
  function config(name: string, key: string | null, extra = ""): string {
    if (key) writeFileSync(join(dir, `${name}.key`), `${key}\n`, { mode: 0o600 });
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, `listen: { address: 127.0.0.1, https: ${ports.https}, http: ${ports.http} }
storage: ./storage-${name}
${extra}acme:
  directory: "${primary?.directoryUrl}"
  fallback:
    - directory: "${fallback?.directoryUrl}"
${key ? `      eab: { kid: ${KID}, hmac_key_file: ${name}.key }\n` : ""}sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:9
`);
    return path;
  }

  it("the primary down: the fallback issues (EAB), the log says why the primary failed, status and metrics name the fallback; the next renewal tries the primary first again", async (t) => {
    const path = config("down", hmacKey, "admin: 127.0.0.1:0\n");
    await primary?.process.stop(); // nothing listens on its port now
    const r = await runGateway(["renew", "--config", path], env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed jupyter\.example\.test: valid until \S+, issuer .*Pebble/m);
    const [switched, ...more] = loggedEvents(r.stderr, "acme.fallback");
    assert.deepEqual(more, []);
    assert.equal(switched?.failed, primary?.directoryUrl);
    assert.equal(switched?.next, fallback?.directoryUrl);
    assert.match(String(switched?.reason), /^cannot reach the ACME directory https:\/\/127\.0\.0\.1:\d+\/dir \(ECONNREFUSED\); check acme\.directory/);
    assert.equal(loggedEvents(r.stderr, "cert.renewed")[0]?.issued_by, fallback?.directoryUrl);
    const accounts = JSON.parse(readFileSync(join(dir, "storage-down", "acme", "accounts.json"), "utf8")) as Record<string, string>;
    assert.deepEqual(Object.keys(accounts), [fallback?.directoryUrl], "an account at the fallback, bound with EAB");

    const human = await runGateway(["status", "--config", path], env);
    t.diagnostic(human.stdout);
    assert.match(human.stdout, new RegExp(`^  issued by: +${fallback?.directoryUrl} \\(acme\\.fallback: the primary CA had failed; the next renewal tries the primary first\\)$`, "m"), human.stdout);
    const json = JSON.parse((await runGateway(["status", "--config", path, "--json"], env)).stdout) as { sites: Array<{ issued_by: string; issued_by_fallback: boolean }> };
    assert.deepEqual([json.sites[0]?.issued_by, json.sites[0]?.issued_by_fallback], [fallback?.directoryUrl, true]);

    const gateway = await startGateway(dir, readFileSync(path, "utf8"), env);
    try {
      assert.equal(await scrapeMetric(gateway.adminPort as number, "gateway_certificate_ca_info", `{site="${SITE}",ca="${fallback?.directoryUrl}",fallback="true"}`), 1);
      assert.match((await servedCertificate(gateway.httpsPort, SITE, await (fallback as Pebble).issuingRoot())).issuer, /Pebble/);
    } finally {
      await gateway.stop();
    }

    await primary?.restart(); // the primary is back: the next order goes there
    const again = await runGateway(["renew", "--config", path, "--force"], env);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.deepEqual(loggedEvents(again.stderr, "acme.fallback"), []);
    assert.equal(loggedEvents(again.stderr, "cert.renewed")[0]?.issued_by, primary?.directoryUrl);
    const back = await runGateway(["status", "--config", path], env);
    assert.match(back.stdout, new RegExp(`^  issued by: +${primary?.directoryUrl} \\(acme\\.directory\\)$`, "m"), back.stdout);
  });

  it("a wrong EAB key, or none: one line naming each CA's failure, the fallback's with the fix", async (t) => {
    await primary?.process.stop();
    try {
      const path = config("wrong-key", randomBytes(32).toString("base64url"));
      const r = await runGateway(["renew", "--config", path], env);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const escaped = (url: string | undefined): string => (url ?? "").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      assert.match(r.stdout, new RegExp(`^failed {2}${escaped(SITE)}: every ACME CA failed: the primary ${escaped(primary?.directoryUrl)}: cannot reach the ACME directory .*\\(ECONNREFUSED\\).*; then fallback 1 ${escaped(fallback?.directoryUrl)}: registering the ACME account: .*[Ee]xternal account binding.*; check eab for ${escaped(fallback?.directoryUrl)} in gateway\\.yaml: kid and the key in ${escaped(join(dir, "wrong-key.key"))} must be the pair the CA gave`), r.stdout);
      assert.equal(r.stdout.trim().split("\n").length, 1, r.stdout);
      t.diagnostic(r.stdout.trim());
      const missing = await runGateway(["renew", "--config", config("no-eab", null)], env);
      assert.equal(missing.status, 1, missing.stdout + missing.stderr);
      assert.match(missing.stdout, new RegExp(`; then fallback 1 ${escaped(fallback?.directoryUrl)}: registering the ACME account: .*; this CA requires External Account Binding: set eab: \\{kid, hmac_key_file\\} for ${escaped(fallback?.directoryUrl)} in gateway\\.yaml`), missing.stdout);
    } finally {
      await primary?.restart();
    }
  });

  it("gateway check asks the fallback's directory too", async () => {
    await primary?.process.stop();
    try {
      const r = await runGateway(["check", "--config", config("check", hmacKey)], env);
      assert.match(r.stdout, new RegExp(`^problem .*: ACME directory ${primary?.directoryUrl} cannot be reached \\(ECONNREFUSED\\)`, "m"), r.stdout);
      assert.match(r.stdout, new RegExp(`^ok +fallback ACME directory ${fallback?.directoryUrl} answers$`, "m"), r.stdout);
    } finally {
      await primary?.restart();
    }
  });
});
