import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import { startAriFixture, type AriFixture } from "../support/ari-fixture.js";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { trustingAgent } from "../support/notebook-client.js";
import { waitFor } from "../support/processes.js";
import { pebbleSuite } from "../support/pebble.js";
import { servedCertificate } from "../support/tls-probe.js";

const IP = "127.0.0.1";
const NAME = "jupyter.example.test";

interface ConfigLines {
  /** listen.address; default 127.0.0.1 */
  readonly address?: string;
  readonly https: number;
  readonly http: number | false;
  readonly directory: string;
  readonly challenge?: string;
  /** acme.profile */
  readonly profile?: string;
  /** Sites' YAML; default: a DNS site with tls: internal first (so it is not the first site that answers without SNI), then the IP site. */
  readonly sites?: string;
}

const IP_SITE_AFTER_A_DNS_SITE = `  - host: ${NAME}
    upstream: http://127.0.0.1:9
    tls: internal
  - host: ${IP}
    upstream: http://127.0.0.1:9
`;

function config(dir: string, name: string, lines: ConfigLines): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `listen: { address: "${lines.address ?? "127.0.0.1"}", https: ${lines.https}, http: ${lines.http} }
storage: ./storage-${name}
admin: false
acme: { directory: "${lines.directory}", challenge: ${lines.challenge ?? "http-01"}${lines.profile ? `, profile: ${lines.profile}` : ""} }
sites:
${lines.sites ?? IP_SITE_AFTER_A_DNS_SITE}`);
  return path;
}

/** `file`: the site's file name in storage (":" becomes "_"). */
const bundlePath = (dir: string, name: string, file = IP): string => join(dir, `storage-${name}`, "certificates", `${file}.pem`);

describe("IP-address sites (RFC 8738) and ACME profiles, against real pebble", { timeout: 300_000 }, () => {
  const suite = pebbleSuite("gateway-acme-ip-");

  it("renew obtains a certificate for 127.0.0.1 over HTTP-01: the address as an IP subjectAltName, no DNS name", async () => {
    const path = config(suite.dir, "http", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    const r = await runGateway(["renew", "--config", path], suite.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed 127\.0\.0\.1: valid until .*, issuer .*Pebble/m);
    const cert = new X509Certificate(readFileSync(bundlePath(suite.dir, "http")));
    assert.equal(cert.subjectAltName, "IP Address:127.0.0.1");
    assert.ok(cert.checkIP(IP));
    assert.doesNotMatch(r.stderr, /self_check_failed/, "the gateway's own challenge check fetched the address itself, nothing to resolve");
  });

  it("IPv6: ::1 obtains over HTTP-01 and TLS-ALPN-01 (SNI 1.0.…ip6.arpa), and a second renew finds it not due", async () => {
    for (const challenge of ["http-01", "tls-alpn-01"]) {
      const sites = '  - host: "::1"\n    upstream: http://127.0.0.1:9\n';
      // Listening on ::1, where pebble connects to validate the address.
      const path = config(suite.dir, `v6-${challenge}`, { address: "::1", https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl, challenge, sites });
      const r = await runGateway(["renew", "--config", path], suite.env);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^renewed ::1: /m);
      assert.equal(new X509Certificate(readFileSync(bundlePath(suite.dir, `v6-${challenge}`, "__1"))).subjectAltName, "IP Address:0:0:0:0:0:0:0:1");
      const again = await runGateway(["renew", "--config", path], suite.env);
      assert.match(again.stdout, /^ok {6}::1: not due until /m, "the certificate's uncompressed IPv6 SAN matches the site's ::1");
    }
  });

  it("serve: a client that sends no SNI gets the IP site's certificate; Host 127.0.0.1:port reaches the site, a foreign Origin does not; :80 redirects to the address; renew --force swaps it live", async (t) => {
    const path = config(suite.dir, "http", { https: suite.ports.https, http: suite.ports.http, directory: suite.pebble.directoryUrl });
    let gateway: GatewayProcess | undefined;
    try {
      gateway = await startGateway(suite.dir, readFileSync(path, "utf8"), suite.env);
      const root = await suite.pebble.issuingRoot();
      const before = await servedCertificate(suite.ports.https, IP, root); // no SNI, and checked against 127.0.0.1
      assert.equal(before.fingerprint256, new X509Certificate(readFileSync(bundlePath(suite.dir, "http"))).fingerprint256);

      // The guard takes Host 127.0.0.1:port as the site: the notebook behind it is down (502), not an unknown site (421).
      const dispatcher = trustingAgent(root);
      const origin = `https://${IP}:${suite.ports.https}`;
      const get = await request(`${origin}/api/status`, { dispatcher });
      await get.body.text();
      assert.equal(get.statusCode, 502);
      const sameSite = await request(`${origin}/api/contents`, { method: "POST", headers: { origin }, dispatcher });
      await sameSite.body.text();
      assert.equal(sameSite.statusCode, 502);
      const foreign = await request(`${origin}/api/contents`, { method: "POST", headers: { origin: "https://evil.example" }, dispatcher });
      await foreign.body.text();
      assert.equal(foreign.statusCode, 403);

      const redirect = await request(`http://${IP}:${suite.ports.http}/tree?x=1`);
      await redirect.body.text();
      assert.equal(redirect.statusCode, 308);
      assert.equal(redirect.headers.location, `https://${IP}:${suite.ports.https}/tree?x=1`);

      const r = await runGateway(["renew", "--config", path, "--force", "--quiet"], suite.env);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^renewed 127\.0\.0\.1: /m);
      const started = performance.now();
      const renewed = await waitFor("the renewed certificate without SNI", async () => {
        const c = await servedCertificate(suite.ports.https, IP, root);
        return c.serialNumber !== before.serialNumber ? c : undefined;
      }, 15_000, 100);
      t.diagnostic(`running gateway served the renewed IP certificate ${(performance.now() - started).toFixed(0)} ms after renew exited`);
      assert.equal(renewed.subjectAltName, "IP Address:127.0.0.1");
    } finally {
      await gateway?.stop();
    }
  });

  it("serve obtains for 127.0.0.1 over TLS-ALPN-01 (the CA's SNI is 1.0.0.127.in-addr.arpa)", async () => {
    const path = config(suite.dir, "alpn", { https: suite.ports.https, http: false, directory: suite.pebble.directoryUrl, challenge: "tls-alpn-01" });
    const gateway = await startGateway(suite.dir, readFileSync(path, "utf8"), suite.env);
    try {
      const root = await suite.pebble.issuingRoot();
      const cert = await waitFor("a certificate for 127.0.0.1 over TLS-ALPN-01", () => servedCertificate(gateway.httpsPort, IP, root).catch(() => undefined), 30_000, 100);
      assert.equal(cert.subjectAltName, "IP Address:127.0.0.1");
      assert.ok(!gateway.events().some((e) => e.event === "cert.renew_failed"), JSON.stringify(gateway.events().filter((e) => e.level === "error")));
    } finally {
      await gateway.stop();
    }
  });

  describe("profiles, from a CA whose directory lists them (a fixture in front of pebble)", () => {
    let ca: AriFixture;

    before(async () => {
      ca = await startAriFixture(suite.pebble);
      ca.profiles = { classic: "the default", shortlived: "6-day certificates", tlsserver: "no client auth" };
    });

    after(() => ca?.close());

    it("an IP site with no profile configured asks for shortlived; acme.profile reaches the CA in newOrder; a CA listing no profiles gets none", async () => {
      const ip = await runGateway(["renew", "--config", config(suite.dir, "auto", { https: suite.ports.https, http: suite.ports.http, directory: ca.directoryUrl })], suite.env);
      assert.equal(ip.status, 0, ip.stdout + ip.stderr);
      assert.deepEqual(ca.newOrders.at(-1), { identifiers: [{ type: "ip", value: IP }], profile: "shortlived" });
      const ordered = ip.stderr.split("\n").filter((l) => l.includes('"acme.ordered"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(ordered.map((e) => [e.identifiers, e.profile]), [[["ip:127.0.0.1"], "shortlived"]], "the log says which profile was asked for");

      const dnsSite = `  - host: ${NAME}\n    upstream: http://127.0.0.1:9\n`;
      const chosen = await runGateway(["renew", "--config", config(suite.dir, "chosen", { https: suite.ports.https, http: suite.ports.http, directory: ca.directoryUrl, profile: "tlsserver", sites: dnsSite })], suite.env);
      assert.equal(chosen.status, 0, chosen.stdout + chosen.stderr);
      assert.deepEqual(ca.newOrders.at(-1), { identifiers: [{ type: "dns", value: NAME }], profile: "tlsserver" });

      ca.profiles = {};
      try {
        const count = ca.newOrders.length;
        const none = await runGateway(["renew", "--config", config(suite.dir, "none", { https: suite.ports.https, http: suite.ports.http, directory: ca.directoryUrl })], suite.env);
        assert.equal(none.status, 0, none.stdout + none.stderr);
        assert.equal(ca.newOrders.length, count + 1);
        assert.deepEqual(ca.newOrders.at(-1), { identifiers: [{ type: "ip", value: IP }] });
      } finally {
        ca.profiles = { classic: "the default", shortlived: "6-day certificates", tlsserver: "no client auth" };
      }
    });

    it("a profile the CA does not offer: renew fails before ordering, naming the profiles it offers; check says the same at config time", async () => {
      const sites = `  - host: ${IP}\n    upstream: http://127.0.0.1:9\n    acme_profile: tlsclient\n`;
      const path = config(suite.dir, "unoffered", { https: suite.ports.https, http: suite.ports.http, directory: ca.directoryUrl, sites });
      const count = ca.newOrders.length;
      const r = await runGateway(["renew", "--config", path], suite.env);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(r.stdout, `failed  127.0.0.1: the CA at ${ca.directoryUrl} does not offer the ACME profile "tlsclient" (it offers classic, shortlived, tlsserver); set acme.profile (or the site's acme_profile) to one of those, or remove it for the CA's default\n`);
      assert.equal(ca.newOrders.length, count, "no order placed");

      const check = await runGateway(["check", "--config", path], suite.env);
      assert.equal(check.status, 1, check.stdout + check.stderr);
      const problems = check.stdout.split("\n").filter((l) => l.startsWith("problem"));
      assert.deepEqual(problems, [`problem ${path}:6:5: acme_profile: the CA at ${ca.directoryUrl} does not offer the ACME profile "tlsclient" (it offers classic, shortlived, tlsserver); set acme.profile (or the site's acme_profile) to one of those, or remove it for the CA's default`]);
      assert.match(check.stdout, /^ok +127\.0\.0\.1 is an address of this server$/m);
    });
  });
});
