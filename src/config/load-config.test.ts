import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { availableParallelism } from "node:os";
import { ConfigErrors } from "./config-error.js";
import { loadConfig, parseConfig } from "./load-config.js";

/** Golden files: each gateway.yaml in testdata/ ends with `# expect:` lines, the exact messages in order. */
const TESTDATA = fileURLToPath(new URL("../../../src/config/testdata/", import.meta.url));

describe("loadConfig golden files", () => {
  for (const name of readdirSync(TESTDATA).filter((f) => f.endsWith(".yaml"))) {
    it(name, async () => {
      const expected = readFileSync(join(TESTDATA, name), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("# expect: "))
        .map((l) => l.slice("# expect: ".length));
      assert.ok(expected.length > 0, `${name} has no "# expect:" line`);
      let actual = ["valid"];
      try {
        await loadConfig(join(TESTDATA, name), name);
      } catch (err) {
        assert.ok(err instanceof ConfigErrors, String(err));
        actual = err.problems.map((p) => p.replaceAll(TESTDATA.replace(/\/$/, ""), "<dir>"));
      }
      assert.deepEqual(actual, expected);
    });
  }
});

describe("loadConfig results", () => {
  it("types, defaults and resolves a full config", async () => {
    const config = await loadConfig(join(TESTDATA, "valid-full.yaml"));
    assert.equal(config.listen.httpPort, null);
    assert.equal(config.storageDir, join(TESTDATA, "state"));
    assert.deepEqual(config.admin, { host: "127.0.0.1", port: 2019 });
    assert.equal(config.acme.directoryUrl.href, "https://acme-staging-v02.api.letsencrypt.org/directory");
    assert.equal(config.acme.challenge, "tls-alpn-01");
    const [first, second] = config.sites;
    assert.deepEqual(first?.hosts, ["jupyter.example.com"]);
    assert.deepEqual(first?.tls, { kind: "acme" });
    assert.deepEqual(first?.tunnel, { ssh: "me@workstation.example.edu", port: 22, remote: "localhost:8888", identityFile: null, knownHostsFile: null });
    assert.deepEqual(first?.frameAncestors, ["https://mywebsite.example.com"]);
    assert.deepEqual(second?.hosts, ["lab.example.com", "lab2.example.com"]);
    assert.deepEqual(second?.tls, { kind: "internal" });
  });

  it("applies PRODUCT.md defaults to a minimal config", () => {
    const config = parseConfig("sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n", "/etc/gateway/gateway.yaml", "gateway.yaml");
    assert.deepEqual(config.listen, { address: "0.0.0.0", httpsPort: 443, httpPort: 80, http2: true });
    assert.equal(config.storageDir, "/var/lib/gateway");
    assert.deepEqual(config.admin, { host: "127.0.0.1", port: 2019 });
    assert.equal(config.acme.directoryUrl.href, "https://acme-v02.api.letsencrypt.org/directory");
    assert.deepEqual(config.sites[0]?.tls, { kind: "acme" });
    assert.equal(config.sites[0]?.upstream.origin, "http://127.0.0.1:8888");
    assert.deepEqual(config.positions, { "listen.https": null, "listen.http": null, admin: null, "acme.directory": null, "acme.profile": null });
    assert.equal(config.workers, 1);
  });

  it("turns HTTP/2 off with listen.http2: false, and says what listen.http2 takes", () => {
    const sites = "sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n";
    assert.equal(parseConfig(`listen:\n  http2: false\n${sites}`, "/etc/gateway/gateway.yaml", "gateway.yaml").listen.http2, false);
    assert.throws(() => parseConfig(`listen:\n  http2: h2\n${sites}`, "/etc/gateway/gateway.yaml", "gateway.yaml"), /gateway\.yaml:2:10: listen\.http2 must be true or false/);
  });

  it("reads workers: a number, or auto as the cores this process may run on", () => {
    const withWorkers = (value: string): number => parseConfig(`workers: ${value}\nsites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n`, "/etc/gateway/gateway.yaml", "gateway.yaml").workers;
    assert.equal(withWorkers("3"), 3);
    assert.equal(withWorkers("auto"), availableParallelism());
  });

  it("knows where the ports, the admin endpoint and the ACME directory are written, for check's messages", () => {
    const config = parseConfig("listen:\n  https: 8443\n  http: 8080\nadmin: 127.0.0.1:2020\nsites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n", "/etc/gateway/gateway.yaml", "gateway.yaml");
    assert.deepEqual(config.positions, { "listen.https": "gateway.yaml:2:10", "listen.http": "gateway.yaml:3:9", admin: "gateway.yaml:4:8", "acme.directory": null, "acme.profile": null });
  });

  it("keeps host names as Host headers are looked up: lower-case, no trailing dot, IPv6 compressed", () => {
    const config = parseConfig("sites:\n  - hosts: [Lab.Example.COM., \"0:0:0::1\", 127.0.0.1]\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", "/etc/gateway/gateway.yaml", "gateway.yaml");
    assert.deepEqual(config.sites[0]?.hosts, ["lab.example.com", "::1", "127.0.0.1"]);
    assert.throws(() => parseConfig("sites:\n  - hosts: [\"::1\", \"0::1\"]\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", "/etc/gateway/gateway.yaml", "gateway.yaml"), /hosts\[1\] is the same name as sites\[0\]\.hosts\[0\] \(::1\)/);
  });

  it("an IP-address site takes tls: acme from its own CA; Let's Encrypt only for an address the internet reaches", () => {
    const ipSite = (host: string, directory: string): string => `acme: { directory: "${directory}" }\nsites:\n  - host: "${host}"\n    upstream: http://127.0.0.1:8888\n`;
    for (const host of ["127.0.0.1", "::1", "10.0.0.5", "203.0.113.7"]) {
      assert.deepEqual(parseConfig(ipSite(host, "https://127.0.0.1:14000/dir"), "/etc/gateway/gateway.yaml", "gateway.yaml").sites[0]?.tls, { kind: "acme" }, host);
    }
    for (const host of ["203.0.113.7", "2001:db8::7", "198.51.100.1"]) {
      assert.deepEqual(parseConfig(ipSite(host, "letsencrypt"), "/etc/gateway/gateway.yaml", "gateway.yaml").sites[0]?.hosts, [host]);
    }
    const refused: Array<[string, string]> = [
      ["127.0.0.1", "a loopback address"],
      ["192.168.1.20", "a private address (RFC 1918)"],
      ["100.64.3.4", "a carrier-grade NAT address (RFC 6598)"],
      ["fd00::1", "a unique local (private) address (RFC 4193)"],
      ["fe80::1", "a link-local address"],
      ["::ffff:8.8.8.8", "an IPv4-mapped address (write the IPv4 address itself)"],
    ];
    for (const [host, kind] of refused) {
      for (const directory of ["letsencrypt", "https://acme-staging-v02.api.letsencrypt.org/directory"]) {
        assert.throws(() => parseConfig(ipSite(host, directory), "/etc/gateway/gateway.yaml", "gateway.yaml"), (err: unknown) => {
          assert.ok(err instanceof ConfigErrors);
          assert.match(err.problems[0] ?? "", new RegExp(`^gateway\\.yaml:3:5: sites\\[0\\]\\.tls is acme, but a public CA cannot issue for "[^"]+", ${kind.replace(/[()]/g, "\\$&")} it cannot reach; write tls: internal, or set acme\\.directory to the URL of your own ACME CA$`));
          return true;
        }, `${host} with ${directory}`);
      }
    }
  });

  it("acme.profile applies to every ACME site; a site's acme_profile overrides it; no profile is null", () => {
    const text = `acme: { profile: tlsserver }\nsites:\n  - host: a.example.com\n    upstream: http://127.0.0.1:8888\n  - host: b.example.com\n    upstream: http://127.0.0.1:8889\n    acme_profile: shortlived\n  - host: c.localhost\n    upstream: http://127.0.0.1:8890\n    tls: internal\n`;
    const config = parseConfig(text, "/etc/gateway/gateway.yaml", "gateway.yaml");
    assert.deepEqual(config.sites.map((s) => s.acmeProfile), ["tlsserver", "shortlived", null]);
    assert.equal(config.acme.profile, "tlsserver");
    assert.equal(config.positions["acme.profile"], "gateway.yaml:1:18");
    assert.equal(parseConfig("sites:\n  - host: a.example.com\n    upstream: http://127.0.0.1:8888\n", "/g.yaml", "g.yaml").sites[0]?.acmeProfile, null);
  });

  it("the repository's gateway.yaml is valid and serves localhost with tls: internal", async () => {
    const config = await loadConfig(fileURLToPath(new URL("../../../gateway.yaml", import.meta.url)));
    assert.equal(config.listen.httpsPort, 8443);
    assert.equal(config.listen.httpPort, 8080);
    assert.deepEqual(config.sites.map((s) => [s.hosts, s.upstream.origin, s.tls.kind]), [[["localhost"], "http://127.0.0.1:8888", "internal"]]);
  });

  it("keeps every problem on one line, whatever control characters the file or its name hold", () => {
    const texts = ["sites:\n  - host: \"a\\u2028b\\u0000\"\n    upstream: \"http://x\\ny\"\n", "sites:\n  - host: a\n   upstream: b\n"];
    for (const text of texts) {
      assert.throws(() => parseConfig(text, "/tmp/gateway.yaml", "odd\nname\r.yaml"), (err: unknown) => {
        assert.ok(err instanceof ConfigErrors);
        assert.ok(err.problems.length > 0);
        for (const problem of err.problems) assert.match(problem, /^odd\\nname\\r\.yaml:\d+:\d+: [^\n\r\u2028]+$/);
        return true;
      });
    }
  });

  it("reads acme.dns: the server's forms, key file relative to gateway.yaml, defaults; or the hooks", () => {
    const dir = mkdtempSync(join(tmpdir(), "gateway-config-dns-"));
    try {
      writeFileSync(join(dir, "acme.key"), "c2VjcmV0\n", { mode: 0o600 });
      writeFileSync(join(dir, "hook.sh"), "#!/bin/sh\n", { mode: 0o700 });
      const site = "sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n";
      const dnsConfig = (dns: string) => parseConfig(`acme:\n  challenge: dns-01\n  dns: ${dns}\n${site}`, join(dir, "gateway.yaml"), "gateway.yaml").acme.dns;
      const servers: Array<[string, { host: string; port: number }]> = [
        ["192.0.2.53", { host: "192.0.2.53", port: 53 }],
        ["192.0.2.53:5353", { host: "192.0.2.53", port: 5353 }],
        ["NS1.Example.com.", { host: "ns1.example.com", port: 53 }],
        ["ns1.example.com:53", { host: "ns1.example.com", port: 53 }],
        ["\"2001:db8::53\"", { host: "2001:db8::53", port: 53 }],
        ["\"[2001:db8::53]:5353\"", { host: "2001:db8::53", port: 5353 }],
      ];
      for (const [written, server] of servers) {
        assert.deepEqual(dnsConfig(`{server: ${written}, key_file: acme.key}`), { kind: "rfc2136", server, zone: null, keyName: null, keyFile: join(dir, "acme.key"), algorithm: null, propagationTimeoutMs: 120_000 }, written);
      }
      assert.deepEqual(dnsConfig("{server: 192.0.2.53, key_file: acme.key, zone: Example.COM., key_name: acme, algorithm: hmac-sha512, propagation_timeout: 30s}"), { kind: "rfc2136", server: { host: "192.0.2.53", port: 53 }, zone: "example.com", keyName: "acme", keyFile: join(dir, "acme.key"), algorithm: "hmac-sha512", propagationTimeoutMs: 30_000 });
      assert.deepEqual(dnsConfig("{auth_hook: hook.sh}"), { kind: "hook", authHook: join(dir, "hook.sh"), cleanupHook: null, timeoutMs: 300_000 });
      assert.throws(() => dnsConfig("{server: \"[192.0.2.53]:53\", key_file: acme.key}"), /acme\.dns\.server must be an IP address or a DNS name/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("holds EAB and TSIG key files to the tls key rule: group read allowed, any other-user bit or group write refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "load-config-key-modes-"));
    try {
      const site = "sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n";
      const load = (acme: string) => () => parseConfig(`acme:\n${acme}\n${site}`, join(dir, "gateway.yaml"), "gateway.yaml");
      for (const mode of [0o600, 0o640, 0o400]) {
        writeFileSync(join(dir, `k${mode.toString(8)}`), "c2VjcmV0\n", { mode });
        chmodSync(join(dir, `k${mode.toString(8)}`), mode);
        load(`  eab: { kid: k, hmac_key_file: k${mode.toString(8)} }`)();
        load(`  challenge: dns-01\n  dns: { server: 192.0.2.53, key_file: k${mode.toString(8)} }`)();
      }
      for (const mode of [0o602, 0o660, 0o601, 0o644]) {
        const name = `k${mode.toString(8)}`;
        writeFileSync(join(dir, name), "c2VjcmV0\n");
        chmodSync(join(dir, name), mode);
        const refusal = new RegExp(`${name} is open to other users \\(mode ${mode.toString(8)}\\), and it holds a secret; run chmod 600 `);
        assert.throws(load(`  eab: { kid: k, hmac_key_file: ${name} }`), refusal);
        assert.throws(load(`  challenge: dns-01\n  dns: { server: 192.0.2.53, key_file: ${name} }`), refusal);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads acme.eab and acme.fallback (one CA or a list): the HMAC key from its 0600 file, a fallback's email defaulting to acme's", () => {
    const dir = mkdtempSync(join(tmpdir(), "load-config-eab-"));
    try {
      writeFileSync(join(dir, "zerossl.key"), "  c2VjcmV0LWhtYWMta2V5LWZvci10ZXN0cw  \n", { mode: 0o600 });
      writeFileSync(join(dir, "gts.key"), "Z3RzLWtleQ==\n", { mode: 0o600 });
      const site = "sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n";
      const list = parseConfig(`acme:\n  email: you@example.com\n  eab: { kid: primary, hmac_key_file: gts.key }\n  fallback:\n    - directory: https://acme.zerossl.com/v2/DV90\n      eab: { kid: zerossl-kid, hmac_key_file: zerossl.key }\n    - { directory: https://dv.acme-v02.api.pki.goog/directory, email: other@example.com }\n${site}`, join(dir, "gateway.yaml"), "gateway.yaml");
      assert.deepEqual(list.acme.eab, { kid: "primary", hmacKey: "Z3RzLWtleQ==", hmacKeyFile: join(dir, "gts.key") });
      assert.deepEqual(list.acme.fallbacks.map((f) => [f.directoryUrl.href, f.eab, f.email, f.position]), [
        ["https://acme.zerossl.com/v2/DV90", { kid: "zerossl-kid", hmacKey: "c2VjcmV0LWhtYWMta2V5LWZvci10ZXN0cw", hmacKeyFile: join(dir, "zerossl.key") }, "you@example.com", "gateway.yaml:5:18"],
        ["https://dv.acme-v02.api.pki.goog/directory", null, "other@example.com", "gateway.yaml:7:20"],
      ]);
      const one = parseConfig(`acme:\n  fallback: { directory: https://acme.zerossl.com/v2/DV90 }\n${site}`, join(dir, "gateway.yaml"), "gateway.yaml");
      assert.deepEqual(one.acme.fallbacks.map((f) => f.directoryUrl.href), ["https://acme.zerossl.com/v2/DV90"]);
      assert.deepEqual(parseConfig(site, join(dir, "gateway.yaml"), "gateway.yaml").acme.fallbacks, []);
      writeFileSync(join(dir, "zerossl.key"), "kid: zerossl-kid\nkey: c2VjcmV0\n");
      assert.throws(() => parseConfig(`acme:\n  fallback: { directory: https://acme.zerossl.com/v2/DV90, eab: { kid: k, hmac_key_file: zerossl.key } }\n${site}`, join(dir, "gateway.yaml"), "gateway.yaml"), (err: unknown) => {
        assert.ok(err instanceof ConfigErrors);
        assert.deepEqual(err.problems, [`gateway.yaml:2:90: acme.fallback.eab.hmac_key_file must hold the HMAC key alone, base64url as the CA gives it (${join(dir, "zerossl.key")} holds something else); put only the key in it`]);
        assert.doesNotMatch(err.problems[0] ?? "", /c2VjcmV0/, "the key never appears in a message");
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports an unreadable file as a config problem with the fix", async () => {
    await assert.rejects(loadConfig("/nonexistent/gateway.yaml"), (err: unknown) => err instanceof ConfigErrors && /cannot read the configuration \(ENOENT\); pass --config FILE/.test(err.problems[0] ?? ""));
  });
});
