import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../../src/config/load-config.js";
import { createTestBed } from "../../test/support/test-ca.js";
import { request as httpsRequest } from "node:https";
import { checkServerIdentity } from "node:tls";
import { startNginx, testNginxConf, writeNginxConf } from "../../test/support/nginx.js";
import { freePort } from "../../test/support/processes.js";
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

it("an IP-address site's export: real nginx answers a client that sends no SNI with its certificate, takes its addresses as Host (IPv6 in brackets), and refuses other names with 421", async () => {
  const dir = join(bed.dir, "ip-site");
  mkdirSync(dir);
  const ipLeaf = bed.ca.issue("ip-site", ["127.0.0.1", "::1"]);
  const port = await freePort();
  // A DNS site first: without the export's default_server, nginx would answer no-SNI handshakes with it.
  const yaml = `listen: { address: 127.0.0.1, https: ${port}, http: false }
sites:
  - host: jupyter.michaelgoerz.net
    upstream: http://127.0.0.1:9
    tls: { cert: ${bed.leaf.certPath}, key: ${bed.leaf.keyPath} }
  - hosts: [127.0.0.1, "::1"]
    upstream: http://127.0.0.1:9
    tls: { cert: ${ipLeaf.certPath}, key: ${ipLeaf.keyPath} }
`;
  const nginx = await startNginx(dir, writeNginxConf(dir, exportServerBlocks(parseConfig(yaml, join(dir, "gateway.yaml"), "gateway.yaml"))), port);
  try {
    // A client of https://127.0.0.1 sends no SNI and checks that the certificate names 127.0.0.1; the Host header is the test's.
    const status = (host: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({ host: "127.0.0.1", port, path: "/api/status", headers: { host }, servername: "", agent: false, ca: bed.ca.certPem, checkServerIdentity: (_name, cert) => checkServerIdentity("127.0.0.1", cert) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject).end();
      });
    assert.equal(await status(`127.0.0.1:${port}`), 502, "the IP site proxies (to a notebook that is down)");
    assert.equal(await status(`[::1]:${port}`), 502);
    assert.equal(await status("other.example"), 421);
    assert.equal(await status("203.0.113.7"), 421);
  } finally {
    await nginx.stop();
  }
});
