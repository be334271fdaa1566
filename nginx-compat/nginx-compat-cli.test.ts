import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config/load-config.js";
import { runGateway } from "../test/support/gateway-process.js";
import { schemaProblems } from "../test/support/gateway-schema.js";

const TESTDATA = fileURLToPath(new URL("../../nginx-compat/testdata/", import.meta.url));

/** The nginx part of a golden case (before the first `----`), without its `# import-nginx` flags line. */
function nginxOf(name: string): string {
  return (readFileSync(join(TESTDATA, name), "utf8").split("\n----\n")[0] ?? "").replace(/^# import-nginx.*\n/, "");
}

// The two commands as users run them: the built CLI, stdout, stderr and exit codes.
describe("gateway import-nginx / export-nginx through the CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "nginx-compat-cli-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("imports the seed's block: gateway.yaml on stdout, warnings with file:line on stderr, exit 0; export reads it back", async () => {
    const conf = join(dir, "seed.conf");
    writeFileSync(conf, nginxOf("seed-recipe.nginxtest"));
    const imported = await runGateway(["import-nginx", conf]);
    assert.equal(imported.status, 0, imported.stderr);
    assert.deepEqual(schemaProblems(imported.stdout), []);
    const config = parseConfig(imported.stdout, join(dir, "gateway.yaml"), "imported");
    assert.deepEqual(config.sites[0]?.tls, { kind: "acme" });
    assert.match(imported.stderr, /^warning: .*seed\.conf:1:\d+: .*TLSv1/m);
    assert.match(imported.stderr, /ssl_stapling/);

    const yaml = join(dir, "gateway.yaml");
    writeFileSync(yaml, imported.stdout);
    const exported = await runGateway(["export-nginx", "--config", yaml]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, /server \{/);
    assert.match(exported.stdout, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
  });

  it("exits 2 naming the servers when several match and no --server-name is given, and imports the one named", async () => {
    const conf = join(dir, "two.conf");
    writeFileSync(conf, nginxOf("several-servers-unpicked.nginxtest"));
    const unpicked = await runGateway(["import-nginx", conf]);
    assert.equal(unpicked.status, 2);
    assert.match(unpicked.stderr, /pick one with --server-name NAME/);
    const picked = await runGateway(["import-nginx", conf, "--server-name", "b.example.org"]);
    assert.equal(picked.status, 0, picked.stderr);
    assert.match(picked.stdout, /b\.example\.org/);
  });

  it("resolves relative includes against --prefix (-p), the folder of nginx.conf; without it, /etc/nginx", async () => {
    mkdirSync(join(dir, "etc", "sites-enabled"), { recursive: true });
    const site = join(dir, "etc", "sites-enabled", "notebook");
    writeFileSync(site, "server {\n  listen 443 ssl;\n  server_name nb.example.org;\n  location / {\n    include gateway-test-params;\n    proxy_pass http://127.0.0.1:8888;\n  }\n}\n");
    writeFileSync(join(dir, "etc", "gateway-test-params"), "proxy_set_header X-Real-IP $remote_addr;\n");
    writeFileSync(join(dir, "etc", "sites-enabled", "gateway-test-params"), "decoy {\n");
    const missing = await runGateway(["import-nginx", site]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /notebook:5:5: include gateway-test-params: file not found \(looked for \/etc\/nginx\/gateway-test-params\);.* pass --prefix DIR/);
    const imported = await runGateway(["import-nginx", "-p", join(dir, "etc"), site]);
    assert.equal(imported.status, 0, imported.stderr);
    assert.match(imported.stderr, /etc\/gateway-test-params:1:1: proxy_set_header X-Real-IP/);
  });

  it("exits 1 on an nginx syntax error or a config without proxy_pass, and 78 when export-nginx meets a bad gateway.yaml", async () => {
    const conf = join(dir, "broken.conf");
    writeFileSync(conf, "server {\n  listen 443 ssl\n");
    const broken = await runGateway(["import-nginx", conf]);
    assert.equal(broken.status, 1);
    assert.match(broken.stderr, /broken\.conf:\d+/);
    const staticSite = join(dir, "default");
    writeFileSync(staticSite, nginxOf("debian-default-site.nginxtest"));
    const unproxied = await runGateway(["import-nginx", staticSite]);
    assert.equal(unproxied.status, 1);
    assert.equal(unproxied.stdout, "");
    assert.match(unproxied.stderr, /no server block proxies to a notebook/);
    const yaml = join(dir, "bad.yaml");
    writeFileSync(yaml, "sites: []\n");
    const bad = await runGateway(["export-nginx", "--config", yaml]);
    assert.equal(bad.status, 78);
  });
});
