import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { SiteConfig } from "../src/config/gateway-config.js";
import { parseConfig } from "../src/config/load-config.js";
import { assertSchemaValid } from "../test/support/gateway-schema.js";
import { exportServerBlocks } from "./export-server-block.js";
import { importServerBlock, NginxImportError } from "./import-server-block.js";
import { NginxSyntaxError, parseNginx } from "./parse-nginx.js";

/** The source folder (tests run from dist/). */
const TESTDATA = fileURLToPath(new URL("../../nginx-compat/testdata", import.meta.url));
const EXPORT_DATA = join(TESTDATA, "export");
/** Absolute paths under testdata are written as $TESTDATA in the golden files, so they hold on any checkout. */
const portable = (text: string): string => text.replaceAll(TESTDATA, "$TESTDATA");
/** UPDATE_GOLDEN=1 rewrites the expected parts from what the code produces (review the diff). */
const UPDATE = process.env.UPDATE_GOLDEN === "1";

const SEPARATOR = "\n----\n";

/**
 * testdata/NAME.nginxtest: the nginx input; `----`; the expected gateway.yaml (or `error: ...`);
 * `----`; the expected warnings, one a line. A first line `# import-nginx --server-name NAME
 * --prefix DIR` (an nginx comment; either option or both) passes those options, DIR relative to
 * testdata/; without --prefix, testdata/ stands in for /etc/nginx.
 */
describe("import-nginx golden cases", () => {
  for (const name of readdirSync(TESTDATA).filter((f) => f.endsWith(".nginxtest")).sort()) {
    it(name, () => {
      const file = join(TESTDATA, name);
      const [nginx = "", expectedYaml = "", expectedWarnings = ""] = readFileSync(file, "utf8").split(SEPARATOR);
      const flags = /^# import-nginx (.*)/.exec(nginx)?.[1] ?? "";
      const serverName = /--server-name (\S+)/.exec(flags)?.[1];
      const prefix = join(TESTDATA, /--prefix (\S+)/.exec(flags)?.[1] ?? "");
      let yaml: string;
      let warnings: string;
      try {
        const result = importServerBlock(parseNginx({ text: nginx, file, displayName: name, prefix }), { displayName: name, ...(serverName ? { serverName } : {}) });
        yaml = portable(result.yaml);
        warnings = result.warnings.join("\n");
      } catch (err) {
        if (!(err instanceof NginxImportError || err instanceof NginxSyntaxError)) throw err;
        yaml = `error: ${err.message}\n`;
        warnings = "";
      }
      if (UPDATE) writeFileSync(file, [nginx, yaml, `${warnings}\n`].join(SEPARATOR));
      assert.equal(yaml, expectedYaml);
      assert.equal(warnings, expectedWarnings.trimEnd());
      if (yaml.startsWith("error: ")) return;
      // The output is a config the gateway accepts, and that users' editors accept.
      const real = yaml.replaceAll("$TESTDATA", TESTDATA);
      assertSchemaValid(real);
      assert.doesNotThrow(() => parseConfig(real, join(TESTDATA, "gateway.yaml"), `${name} (output)`));
    });
  }
});

/** testdata/export/NAME.exporttest: a gateway.yaml; `----`; the expected nginx config. */
describe("export-nginx golden cases", () => {
  for (const name of readdirSync(EXPORT_DATA).filter((f) => f.endsWith(".exporttest")).sort()) {
    it(name, () => {
      const file = join(EXPORT_DATA, name);
      const [yaml = "", expected = ""] = readFileSync(file, "utf8").split(SEPARATOR);
      const nginx = portable(exportServerBlocks(parseConfig(yaml, file, name)));
      if (UPDATE) writeFileSync(file, [yaml, nginx].join(SEPARATOR));
      assert.equal(nginx, expected);
    });
  }
});

/**
 * export-nginx, then import-nginx of each site: what the gateway does itself imports without a
 * warning (the only warnings name the other sites' servers: a gateway.yaml made from one server
 * holds one site), and every setting the export writes as nginx directives comes back.
 */
describe("export-nginx → import-nginx round trip", () => {
  for (const name of readdirSync(EXPORT_DATA).filter((f) => f.endsWith(".exporttest")).sort()) {
    const file = join(EXPORT_DATA, name);
    const config = parseConfig(readFileSync(file, "utf8").split(SEPARATOR)[0] ?? "", file, name);
    const exported = exportServerBlocks(config);
    for (const site of config.sites) {
      it(`${name}: ${site.hosts.join(", ")}`, () => {
        const nginx = parseNginx({ text: exported, file: join(EXPORT_DATA, "exported.conf"), displayName: "exported.conf", prefix: EXPORT_DATA });
        const result = importServerBlock(nginx, { displayName: "exported.conf", serverName: site.hosts[0] as string });
        const otherServers = result.warnings.map((w) => /^exported\.conf:\d+:\d+: server: another server \((.*)\); not imported/.exec(w)?.[1] ?? w);
        assert.deepEqual(otherServers, config.sites.filter((s) => s !== site).map((s) => s.hosts.join(" ")));
        if (site.tls.kind === "internal") {
          // tls: internal has no nginx equivalent: the export leaves a certificate path to fill in (and says so), which imports as files.
          assert.match(result.yaml, new RegExp(`cert: /etc/nginx/tls/${site.hosts[0]}\\.crt`));
          return;
        }
        const back = parseConfig(result.yaml, join(EXPORT_DATA, "gateway.yaml"), `${name} (re-imported)`);
        assert.deepEqual(back.listen, config.listen);
        assert.deepEqual(back.logs, config.logs);
        assert.deepEqual(back.timeouts, config.timeouts);
        const expressed = (s: SiteConfig) => ({ hosts: s.hosts, upstream: s.upstream.href, tls: s.tls, frameAncestors: s.frameAncestors, allow: s.allow, deny: s.deny });
        assert.deepEqual(back.sites.map(expressed), [expressed(site)]);
      });
    }
  }
});
