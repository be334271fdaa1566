import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
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
