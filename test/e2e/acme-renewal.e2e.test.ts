import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { describe, it } from "node:test";
import { servedCertificate } from "../support/tls-probe.js";
import { startAriFixture, type AriFixture } from "../support/ari-fixture.js";
import { GATEWAY_MAIN, runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { startProcess, waitFor } from "../support/processes.js";
import { pebbleSuite, startPebble } from "../support/pebble.js";

const SITE = "jupyter.example.test";

/** `resolver`: the DNS server the gateway's own challenge check asks (pebble's, to see what the CA sees). */
function config(dir: string, name: string, lines: { https: number; http: number | false; directory: string; challenge?: string; resolver?: string }): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `listen: { address: 127.0.0.1, https: ${lines.https}, http: ${lines.http} }
storage: ./storage-${name}
admin: false
acme: { directory: "${lines.directory}", challenge: ${lines.challenge ?? "http-01"}${lines.resolver ? `, resolvers: ["${lines.resolver}"]` : ""} }
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:9
`);
  return path;
}

/** The findings of the gateway's own challenge check in a run's log (stderr), one per line. */
function selfCheckFindings(stderr: string): string {
  return stderr.split("\n").filter((l) => l.includes('"acme.self_check_failed"')).map((l) => (JSON.parse(l) as { finding: string }).finding).join("\n");
}

const bundlePath = (dir: string, name: string): string => join(dir, `storage-${name}`, "certificates", `${SITE}.pem`);

describe("ACME renewal: no gateway running, TLS-ALPN-01, ARI, faults", { timeout: 300_000 }, () => {
  const suite = pebbleSuite("gateway-renew-");

  it("renew answers HTTP-01 itself when no gateway holds the port; its own check of the challenge URL finds nothing wrong", async () => {
    const path = config(suite.dir, "alone", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl, resolver: suite.pebble.dnsServer });
    const r = await runGateway(["renew", "--config", path], suite.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed jupyter\.example\.test/m);
    assert.ok(existsSync(bundlePath(suite.dir, "alone")));
    assert.doesNotMatch(r.stderr, /self_check/);
  });

  it("renew --dry-run places a real order and installs nothing", async () => {
    const path = config(suite.dir, "alone", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    const before = readFileSync(bundlePath(suite.dir, "alone"), "utf8");
    const r = await runGateway(["renew", "--config", path, "--dry-run"], suite.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^dry-run jupyter\.example\.test: the CA issued a certificate \(not installed\), issuer .*Pebble/m);
    assert.equal(readFileSync(bundlePath(suite.dir, "alone"), "utf8"), before);
  });

  it("a challenge that fails: the CA's reason in one line, exit 1, the working certificate stays", async () => {
    const path = config(suite.dir, "alone", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl, resolver: suite.pebble.dnsServer });
    const before = readFileSync(bundlePath(suite.dir, "alone"), "utf8");
    // Something else holds port 80 and does not answer challenges.
    const squatter: Server = createServer((_req, res) => res.writeHead(404).end("not here"));
    await new Promise<void>((resolve) => squatter.listen(suite.ports.http, "127.0.0.1", resolve));
    try {
      const r = await runGateway(["renew", "--config", path, "--force"], suite.env);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(r.stdout.trim().split("\n").length, 1);
      // Who holds the port is named (this test's own process), not guessed to be gateway serve.
      const elsewhere = r.stderr.split("\n").find((l) => l.includes('"acme.responder_elsewhere"'));
      assert.ok(elsewhere, r.stderr);
      const { level, reason } = JSON.parse(elsewhere) as { level: string; reason: string };
      assert.equal(level, "warn");
      assert.match(reason, new RegExp(`^port ${suite.ports.http} is held by pid ${process.pid} \\(\\S*node [^)]*\\); the CA's challenges succeed only if that is gateway serve with this storage; otherwise stop it`));
      assert.doesNotMatch(r.stderr, /presumably/);
      // The gateway fetched its own challenge URL first and said what the CA was about to find.
      assert.match(selfCheckFindings(r.stderr), new RegExp(`^http://jupyter\\.example\\.test:${suite.ports.http}/\\.well-known/acme-challenge/\\S+ answered 404 from 127\\.0\\.0\\.1: something else serves port ${suite.ports.http} for this name \\(here port ${suite.ports.http} is held by pid ${process.pid} \\(\\S*node .*\\)\\)$`));
      // The CA's detail, then what to do; not the authorization's JSON (once, twice, or at all).
      assert.match(r.stdout, /^failed {2}jupyter\.example\.test: validating jupyter\.example\.test over http-01: Non-200 status code from HTTP: http:\/\/jupyter\.example\.test:\d+\/\.well-known\/acme-challenge\/\S+ returned 404; something other than this gateway answers port 80 for the name .*; stop it, let it pass \/\.well-known\/acme-challenge\/ to the gateway, or point DNS here\n$/);
      assert.doesNotMatch(r.stdout, /[{}]/);
      assert.ok(r.stdout.length < 500, `${r.stdout.length} characters`);
    } finally {
      squatter.close();
    }
    assert.equal(readFileSync(bundlePath(suite.dir, "alone"), "utf8"), before);
  });

  it("DNS pointing at another address: the gateway's own check says so, the CA's connection refused and what to do come in one line; the whole authorization only in the log's details", async () => {
    const path = config(suite.dir, "alone", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl, resolver: suite.pebble.dnsServer });
    await suite.pebble.setAddresses(SITE, ["127.0.0.2"]);
    try {
      const r = await runGateway(["renew", "--config", path, "--force"], suite.env);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^failed {2}jupyter\.example\.test: validating jupyter\.example\.test over http-01: .*dial tcp 127\.0\.0\.2:\d+: connect: connection refused; nothing accepts connections on port 80 at the address the CA found; point DNS at this server, open port 80 in the firewall .*\n$/);
      const failed = r.stderr.split("\n").filter((l) => l.includes('"cert.renew_failed"')).map((l) => JSON.parse(l) as { error: string; details?: { authorization?: { status?: string } } });
      assert.equal(failed.length, 1, r.stderr);
      assert.equal(failed[0]?.details?.authorization?.status, "invalid");
      assert.doesNotMatch(failed[0]?.error ?? "", /[{}]/);
      assert.match(selfCheckFindings(r.stderr), new RegExp(`^http://jupyter\\.example\\.test:${suite.ports.http}/\\.well-known/acme-challenge/\\S+: connection refused at 127\\.0\\.0\\.2: nothing listens on port ${suite.ports.http} there; 127\\.0\\.0\\.2 is not an address of this server: does DNS point elsewhere`));
    } finally {
      await suite.pebble.setAddresses(SITE, ["127.0.0.1"]);
    }
  });

  it("a CA whose certificate this server does not trust: the message says NODE_EXTRA_CA_CERTS", async () => {
    const path = config(suite.dir, "alone", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    const r = await runGateway(["renew", "--config", path, "--force", "--quiet"]); // no NODE_EXTRA_CA_CERTS for pebble's CA
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^failed {2}jupyter\.example\.test: the ACME directory https:\/\/127\.0\.0\.1:\d+\/dir presents a certificate this server does not trust \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate\); for a private CA, start the gateway with NODE_EXTRA_CA_CERTS=\/path\/to\/ca\.pem \(its root certificate, PEM\) in serve's and renew's environment\n$/);
  });

  it("a CA that forgot the account (suite.pebble restarted): renew registers again, says so, and the order succeeds", async () => {
    const path = config(suite.dir, "forgotten", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    const first = await runGateway(["renew", "--config", path], suite.env);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    await suite.pebble.restart();
    const r = await runGateway(["renew", "--config", path, "--force"], suite.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed jupyter\.example\.test/m);
    const reregistered = r.stderr.split("\n").filter((l) => l.includes('"acme.account_reregistered"')).map((l) => JSON.parse(l) as { forgotten: string; account: string; reason: string });
    assert.equal(reregistered.length, 1, r.stderr);
    assert.match(reregistered[0]?.reason ?? "", /^creating the order: Account \S+ not found/);
    assert.notEqual(reregistered[0]?.account, reregistered[0]?.forgotten);
    const again = await runGateway(["renew", "--config", path, "--force"], suite.env);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.doesNotMatch(again.stderr, /account_reregistered/, "the new account was stored");
  });

  it("a run cut off after the CA registered the account but before its URL was stored: the next renew finds the account and orders", async () => {
    const path = config(suite.dir, "cutoff", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    const first = await runGateway(["renew", "--config", path], suite.env);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    rmSync(join(suite.dir, "storage-cutoff", "acme", "accounts.json")); // the key stays registered at the CA
    const r = await runGateway(["renew", "--config", path, "--force"], suite.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed jupyter\.example\.test/m);
    assert.match(r.stderr, /"acme\.account_found"/);
    assert.ok(existsSync(join(suite.dir, "storage-cutoff", "acme", "accounts.json")), "the found account's URL is stored");
  });

  it("kill -9 in the middle of a renewal leaves a whole certificate, and the next renew takes over the lock", async () => {
    const path = config(suite.dir, "alone", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    const before = readFileSync(bundlePath(suite.dir, "alone"), "utf8");
    for (const delayMs of [150, 350, 600]) {
      const renew = startProcess(process.execPath, [GATEWAY_MAIN, "renew", "--config", path, "--force"], { env: { ...process.env, ...suite.env } });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      await renew.stop("SIGKILL");
      const now = readFileSync(bundlePath(suite.dir, "alone"), "utf8");
      new X509Certificate(now); // parses: never a torn file
      assert.ok(now === before || now.includes("BEGIN EC PRIVATE KEY") || now.includes("BEGIN PRIVATE KEY"));
    }
    const r = await runGateway(["renew", "--config", path, "--force"], suite.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed /m);
  });

  it("follows ARI: a window in the future is not due, a window in the past renews", async () => {
    const ari: AriFixture = await startAriFixture(suite.pebble);
    try {
      const path = config(suite.dir, "ari", { https: suite.ports.https, http: suite.ports.http, directory: ari.directoryUrl });
      assert.equal((await runGateway(["renew", "--config", path], suite.env)).status, 0);
      const first = readFileSync(bundlePath(suite.dir, "ari"), "utf8");

      ari.window = { start: new Date(Date.now() + 20 * 86_400_000), end: new Date(Date.now() + 21 * 86_400_000) };
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the fixture's Retry-After: 1
      const notDue = await runGateway(["renew", "--config", path], suite.env);
      assert.match(notDue.stdout, /not due until /);
      assert.equal(readFileSync(bundlePath(suite.dir, "ari"), "utf8"), first);
      assert.ok(ari.queried.length >= 1);

      ari.window = { start: new Date(Date.now() - 2 * 3600_000), end: new Date(Date.now() - 3600_000) };
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const due = await runGateway(["renew", "--config", path], suite.env);
      assert.equal(due.status, 0, due.stdout + due.stderr);
      assert.match(due.stdout, /^renewed /m);
      assert.notEqual(readFileSync(bundlePath(suite.dir, "ari"), "utf8"), first);
    } finally {
      ari.close();
    }
  });

  it("a CA rejecting half the nonces: every run ends renewed or with one clear line, the certificate is always whole", async (t) => {
    const flaky = await startPebble(join(suite.dir, "suite.pebble-nonce"), { httpPort: suite.ports.http, tlsPort: suite.ports.https, env: { PEBBLE_WFE_NONCEREJECT: "50" } });
    try {
      const path = config(suite.dir, "nonce", { https: suite.ports.https, http: suite.ports.http, directory: flaky.directoryUrl });
      const results: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await runGateway(["renew", "--config", path, "--force", "--quiet"], { NODE_EXTRA_CA_CERTS: flaky.httpsCaPath });
        assert.ok(r.status === 0 || r.status === 1, r.stderr);
        assert.match(r.stdout, r.status === 0 ? /^renewed jupyter\.example\.test/ : /^failed {2}jupyter\.example\.test: \S.*\n$/);
        if (existsSync(bundlePath(suite.dir, "nonce"))) new X509Certificate(readFileSync(bundlePath(suite.dir, "nonce")));
        results.push(r.status === 0 ? "renewed" : r.stdout.trim());
      }
      t.diagnostic(`with PEBBLE_WFE_NONCEREJECT=50: ${results.join(" | ")}`);
      assert.ok(results.includes("renewed"), "acme-client's bad-nonce retries get most orders through");
    } finally {
      await flaky.stop();
    }
  });

  it("a failed order in serve says when it is retried (retry_at, retry_in_s), and the state keeps it", async () => {
    const path = config(suite.dir, "retry", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl, resolver: suite.pebble.dnsServer });
    await suite.pebble.setAddresses(SITE, ["127.0.0.2"]);
    let gateway: GatewayProcess | undefined;
    try {
      gateway = await startGateway(suite.dir, readFileSync(path, "utf8"), suite.env);
      const { events } = gateway;
      const failed = await waitFor("cert.renew_failed", () => events().find((e) => e.event === "cert.renew_failed"), 20_000, 100);
      assert.match(String(failed.error), /connection refused; nothing accepts connections on port 80/);
      // No certificate yet: the first retry comes 30 s later (then 60 s, 120 s, … up to the check interval).
      assert.equal(failed.retry_in_s, 30);
      const retryAt = Date.parse(String(failed.retry_at));
      assert.ok(Math.abs(retryAt - (Date.parse(String(failed.time)) + 30_000)) < 5_000, `retry_at ${String(failed.retry_at)} at ${String(failed.time)}`);
      const state = JSON.parse(readFileSync(join(suite.dir, "storage-retry", "state", `${SITE}.json`), "utf8")) as { nextAttempt?: string };
      assert.equal(state.nextAttempt, failed.retry_at);
    } finally {
      await gateway?.stop();
      await suite.pebble.setAddresses(SITE, ["127.0.0.1"]);
    }
  });

  it("serve obtains over TLS-ALPN-01 on its https port", async () => {
    const path = config(suite.dir, "alpn", { https: suite.ports.https, http: false, directory: suite.pebble.directoryUrl, challenge: "tls-alpn-01" });
    const gateway = await startGateway(suite.dir, readFileSync(path, "utf8"), suite.env);
    try {
      const root = await suite.pebble.issuingRoot();
      const cert = await waitFor("a certificate over TLS-ALPN-01", () => servedCertificate(gateway.httpsPort, SITE, root).catch(() => undefined), 30_000, 100);
      assert.match(cert.issuer, /Pebble/);
    } finally {
      await gateway.stop();
    }
  });
});
