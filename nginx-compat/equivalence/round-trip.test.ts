import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/load-config.js";
import { createTestBed } from "../../test/support/test-ca.js";
import { testNginxConf, writeNginxConf } from "../../test/support/nginx.js";
import { exportServerBlocks } from "../export-server-block.js";
import { importServerBlock } from "../import-server-block.js";
import { parseNginx } from "../parse-nginx.js";

const SEED = fileURLToPath(new URL("../../../nginx-compat/testdata/seed-recipe.nginxtest", import.meta.url));
const bed = createTestBed("nginx-round-trip-", ["jupyter.michaelgoerz.net"]);
after(() => rmSync(bed.dir, { recursive: true, force: true }));

it("the seed's server block → import → export → nginx -t accepts it", () => {
  const [block = ""] = readFileSync(SEED, "utf8").split("\n----\n");
  const imported = importServerBlock(parseNginx({ text: block, file: SEED, displayName: "seed", prefix: dirname(SEED) }), { displayName: "seed" });
  const config = parseConfig(imported.yaml, join(bed.dir, "gateway.yaml"), "imported gateway.yaml");
  const exported = exportServerBlocks(config);
  // certbot's files do not exist here: the test CA's leaf stands in for them.
  const live = "/etc/letsencrypt/live/jupyter.michaelgoerz.net";
  assert.ok(exported.includes(`${live}/fullchain.pem`));
  const nginx = exported.replaceAll(`${live}/fullchain.pem`, bed.leaf.certPath).replaceAll(`${live}/privkey.pem`, bed.leaf.keyPath).replaceAll("/var/www/certbot", join(bed.dir, "webroot"));
  const verdict = testNginxConf(bed.dir, writeNginxConf(bed.dir, nginx));
  assert.match(verdict, /test is successful/);
});
