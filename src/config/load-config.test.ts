import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
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
    assert.deepEqual(config.listen, { address: "0.0.0.0", httpsPort: 443, httpPort: 80 });
    assert.equal(config.storageDir, "/var/lib/gateway");
    assert.deepEqual(config.admin, { host: "127.0.0.1", port: 2019 });
    assert.equal(config.acme.directoryUrl.href, "https://acme-v02.api.letsencrypt.org/directory");
    assert.deepEqual(config.sites[0]?.tls, { kind: "acme" });
    assert.equal(config.sites[0]?.upstream.origin, "http://127.0.0.1:8888");
    assert.deepEqual(config.positions, { "listen.https": null, "listen.http": null, admin: null, "acme.directory": null });
    assert.equal(config.workers, 1);
  });

  it("reads workers: a number, or auto as the cores this process may run on", () => {
    const withWorkers = (value: string): number => parseConfig(`workers: ${value}\nsites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n`, "/etc/gateway/gateway.yaml", "gateway.yaml").workers;
    assert.equal(withWorkers("3"), 3);
    assert.equal(withWorkers("auto"), availableParallelism());
  });

  it("knows where the ports, the admin endpoint and the ACME directory are written, for check's messages", () => {
    const config = parseConfig("listen:\n  https: 8443\n  http: 8080\nadmin: 127.0.0.1:2020\nsites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n", "/etc/gateway/gateway.yaml", "gateway.yaml");
    assert.deepEqual(config.positions, { "listen.https": "gateway.yaml:2:10", "listen.http": "gateway.yaml:3:9", admin: "gateway.yaml:4:8", "acme.directory": null });
  });

  it("keeps host names as Host headers are looked up: lower-case, no trailing dot, IPv6 compressed", () => {
    const config = parseConfig("sites:\n  - hosts: [Lab.Example.COM., \"0:0:0::1\", 127.0.0.1]\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", "/etc/gateway/gateway.yaml", "gateway.yaml");
    assert.deepEqual(config.sites[0]?.hosts, ["lab.example.com", "::1", "127.0.0.1"]);
    assert.throws(() => parseConfig("sites:\n  - hosts: [\"::1\", \"0::1\"]\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", "/etc/gateway/gateway.yaml", "gateway.yaml"), /hosts\[1\] is the same name as sites\[0\]\.hosts\[0\] \(::1\)/);
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

  it("reports an unreadable file as a config problem with the fix", async () => {
    await assert.rejects(loadConfig("/nonexistent/gateway.yaml"), (err: unknown) => err instanceof ConfigErrors && /cannot read the configuration \(ENOENT\); pass --config FILE/.test(err.problems[0] ?? ""));
  });
});
