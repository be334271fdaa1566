import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NSUPDATE, startBind9, type Bind9 } from "../support/bind9.js";
import { runGateway, startGateway } from "../support/gateway-process.js";
import { freePort, waitFor } from "../support/processes.js";
import { servedCertificate } from "../support/tls-probe.js";
import { startPebble, type Pebble } from "../support/pebble.js";

/**
 * DNS-01 against real pebble resolving through a real BIND (named), authoritative for
 * example.test and taking TSIG-signed updates: the gateway's own RFC 2136 client, and certbot-style
 * hooks that update the zone with nsupdate as a user's script would. `gateway renew` orders (cron's
 * path); no port 80 or 443 is involved.
 */
describe("DNS-01 over RFC 2136 and hooks, against real pebble and BIND", { timeout: 180_000 }, () => {
  let dir: string;
  let bind: Bind9;
  let pebble: Pebble;
  let env: Record<string, string>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-dns01-"));
    bind = await startBind9(join(dir, "bind"));
    // pebble never validates over HTTP or TLS here: its ports point at nothing.
    pebble = await startPebble(join(dir, "pebble"), { httpPort: await freePort(), tlsPort: await freePort(), dnsServer: bind.server });
    env = { NODE_EXTRA_CA_CERTS: pebble.httpsCaPath };
  });

  after(async () => {
    await Promise.all([pebble?.stop(), bind?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A gateway.yaml in its own folder with one site `host` and `dnsYaml` as acme.dns; returns its path. */
  function writeConfig(name: string, host: string, dnsYaml: string): string {
    const path = join(dir, name, "gateway.yaml");
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(path, configYaml(host, dnsYaml));
    return path;
  }

  /** No port 80 at all: dns-01 needs none. */
  function configYaml(host: string, dnsYaml: string): string {
    return `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
acme:
  directory: ${pebble.directoryUrl}
  challenge: dns-01
  dns:
${dnsYaml.replace(/^/gm, "    ")}
sites:
  - host: ${host}
    upstream: http://127.0.0.1:9
`;
  }

  function issuedNames(config: string, host: string): string {
    return new X509Certificate(readFileSync(join(config, "..", "storage", "certificates", `${host}.pem`))).subjectAltName ?? "";
  }

  /** Shell lines that send one update to named as a user's hook would: nsupdate with the zone's TSIG key. */
  function nsupdate(update: string): string {
    return `${NSUPDATE} -k ${bind.keyFile} <<EOF\nserver 127.0.0.1 ${bind.port}\nzone ${bind.zone}\n${update}\nsend\nEOF`;
  }

  /** An executable sh script in the test's folder. */
  function script(name: string, body: string): string {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
    return path;
  }

  it("RFC 2136: renew adds the TXT record with a TSIG-signed update, pebble validates it, the certificate is stored, the record is gone after", async (t) => {
    const host = "rfc2136.example.test";
    const config = writeConfig("rfc2136", host, `server: ${bind.server}\nkey_file: ${bind.keyFile}`);
    const r = await runGateway(["renew", "--config", config], env);
    t.diagnostic(`renew over dns-01 (RFC 2136): ${r.ms.toFixed(0)} ms`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`renewed ${host.replaceAll(".", "\\.")}: valid until`));
    assert.match(issuedNames(config, host), /DNS:rfc2136\.example\.test/);
    assert.match(r.stderr, /"event":"acme\.dns_record_added".*"zone":"example\.test"/);
    assert.match(r.stderr, /"event":"acme\.dns_record_removed"/);
    assert.deepEqual(await bind.txt(`_acme-challenge.${host}`), [], "the challenge record is deleted after validation");
  });

  it("serve with listen.http: false obtains its certificate over dns-01 at start and serves it", async (t) => {
    const host = "serve.example.test";
    mkdirSync(join(dir, "serve"));
    const gateway = await startGateway(join(dir, "serve"), configYaml(host, `server: ${bind.server}\nkey_file: ${bind.keyFile}`), env);
    t.after(() => gateway.stop());
    const root = await pebble.issuingRoot();
    const cert = await waitFor("a certificate from pebble", () => servedCertificate(gateway.httpsPort, host, root).catch(() => undefined), 30_000, 100);
    assert.match(cert.subjectAltName ?? "", /DNS:serve\.example\.test/);
    assert.equal(gateway.httpPort, null);
  });

  it("RFC 2136: a key with the server's name but another secret fails the order with one line naming BADSIG and the fix", async () => {
    const wrongKey = join(dir, "wrong.key");
    writeFileSync(wrongKey, execFileSync("/usr/sbin/tsig-keygen", ["-a", "hmac-sha256", bind.keyName]), { mode: 0o600 });
    const host = "wrong-key.example.test";
    const config = writeConfig("wrong-key", host, `server: ${bind.server}\nkey_file: ${wrongKey}`);
    const r = await runGateway(["renew", "--config", config], env);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const failed = r.stdout.split("\n").filter((l) => l.startsWith("failed"));
    assert.equal(failed.length, 1, r.stdout);
    assert.match(failed[0] ?? "", /failed {2}wrong-key\.example\.test: .*adding TXT _acme-challenge\.wrong-key\.example\.test in zone example\.test at 127\.0\.0\.1:\d+ with TSIG key acme-update: the server answered BADSIG; the server has a key by that name with another secret; copy the server's key statement/);
    assert.deepEqual(await bind.txt(`_acme-challenge.${host}`), []);
  });

  it("RFC 2136: an update the server accepts but never serves fails after propagation_timeout, saying it timed out, and the record is deleted", async (t) => {
    const split = await startBind9(join(dir, "bind-split"), { updatesInvisible: true });
    t.after(() => split.stop());
    const host = "never-served.example.test";
    const config = writeConfig("never-served", host, `server: ${split.server}\nkey_file: ${split.keyFile}\npropagation_timeout: 10s`);
    const r = await runGateway(["renew", "--config", config], env);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /failed {2}never-served\.example\.test: .*timed out after 10 s waiting for 127\.0\.0\.1:\d+ to serve the TXT record _acme-challenge\.never-served\.example\.test it accepted; check the server's log, or raise acme\.dns\.propagation_timeout/);
    assert.match(r.stderr, /"event":"acme\.dns_record_removed"/);
    assert.ok(r.ms < 30_000, `gave up after ${r.ms} ms`);
  });

  it("check: a signed update that changes nothing proves the key and the zone before any order; a wrong secret is a problem naming BADSIG", async () => {
    const wrongKey = join(dir, "check-wrong.key");
    writeFileSync(wrongKey, execFileSync("/usr/sbin/tsig-keygen", ["-a", "hmac-sha256", bind.keyName]), { mode: 0o600 });
    const good = await runGateway(["check", "--config", writeConfig("check-good", "check.example.test", `server: ${bind.server}\nkey_file: ${bind.keyFile}`)], env);
    assert.match(good.stdout, new RegExp(`ok +acme\\.dns: ${bind.server} takes updates to zone example\\.test signed with TSIG key acme-update`), good.stdout + good.stderr);
    assert.doesNotMatch(good.stdout, /DNS: check\.example\.test/, "dns-01 needs no address pointing here");
    const bad = await runGateway(["check", "--config", writeConfig("check-bad", "check.example.test", `server: ${bind.server}\nkey_file: ${wrongKey}`)], env);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /acme\.dns: dns-01 for check\.example\.test: a test update \(changing nothing\) of zone example\.test at 127\.0\.0\.1:\d+ with TSIG key acme-update: the server answered BADSIG/, bad.stdout);
  });

  it("hook: certbot-style auth and cleanup hooks that run nsupdate obtain the certificate; cleanup gets CERTBOT_AUTH_OUTPUT and removes the record", async () => {
    const host = "hook.example.test";
    const seen = join(dir, "hook-env.txt");
    const auth = script("auth-hook.sh", `set -e\n${nsupdate('update add _acme-challenge.$CERTBOT_DOMAIN. 60 IN TXT "$CERTBOT_VALIDATION"')}\necho "added $CERTBOT_DOMAIN"`);
    const cleanup = script("cleanup-hook.sh", `set -e\n${nsupdate('update delete _acme-challenge.$CERTBOT_DOMAIN. TXT "$CERTBOT_VALIDATION"')}\necho "$CERTBOT_AUTH_OUTPUT|$CERTBOT_ALL_DOMAINS|$CERTBOT_REMAINING_CHALLENGES|\${CERTBOT_TOKEN-unset}" > ${seen}`);
    const config = writeConfig("hook", host, `auth_hook: ${auth}\ncleanup_hook: ${cleanup}`);
    const r = await runGateway(["renew", "--config", config], env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(issuedNames(config, host), /DNS:hook\.example\.test/);
    assert.equal(readFileSync(seen, "utf8").trim(), `added ${host}|${host}|0|unset`);
    assert.deepEqual(await bind.txt(`_acme-challenge.${host}`), []);
  });

  it("hook: when the CA finds the wrong TXT value, the order fails with the CA's words and the DNS hint, and the cleanup hook still runs", async () => {
    const host = "wrong-value.example.test";
    const auth = script("wrong-value-auth.sh", `set -e\n${nsupdate('update add _acme-challenge.$CERTBOT_DOMAIN. 60 IN TXT "not-$CERTBOT_VALIDATION"')}`);
    const cleanup = script("wrong-value-cleanup.sh", `set -e\n${nsupdate('update delete _acme-challenge.$CERTBOT_DOMAIN. TXT "not-$CERTBOT_VALIDATION"')}`);
    const r = await runGateway(["renew", "--config", writeConfig("wrong-value", host, `auth_hook: ${auth}\ncleanup_hook: ${cleanup}`)], env);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /failed {2}wrong-value\.example\.test: validating wrong-value\.example\.test over dns-01: .+; the CA's DNS lookup did not find the value the gateway published/);
    assert.deepEqual(await bind.txt(`_acme-challenge.${host}`), [], "the cleanup hook ran after the failed validation");
  });

  it("hook: a failing auth hook fails the order with its exit status and the end of its stderr", async () => {
    const auth = script("failing-hook.sh", `echo "calling the DNS provider's API" >&2\necho "HTTP 403: token lacks zone:edit on example.test" >&2\nexit 3`);
    const config = writeConfig("failing-hook", "failing-hook.example.test", `auth_hook: ${auth}`);
    const r = await runGateway(["renew", "--config", config], env);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /failed {2}failing-hook\.example\.test: .*acme\.dns\.auth_hook \S+failing-hook\.sh for failing-hook\.example\.test: exited with status 3: calling the DNS provider's API \| HTTP 403: token lacks zone:edit on example\.test/);
  });
});
