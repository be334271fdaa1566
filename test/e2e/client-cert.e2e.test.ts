import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import forge from "node-forge";
import { Agent, request } from "undici";
import { browserHome, launchBrowser } from "../support/browser.js";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { waitFor } from "../support/processes.js";
import { createTestCa } from "../support/test-ca.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

const SITE = "mtls.localhost";
const OPEN_SITE = "open.localhost";

/** Runs `gateway client-cert add NAME` and turns the .p12 it wrote back into PEM, as a device would import it. */
async function addClient(configPath: string, name: string): Promise<{ key: string; cert: string }> {
  const r = await runGateway(["client-cert", "add", name, "--config", configPath]);
  assert.equal(r.status, 0, r.stderr);
  const p12Path = /: (\/\S+\.p12)$/m.exec(r.stdout)?.[1];
  const password = /^password: (\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(p12Path && password, r.stdout);
  const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(readFileSync(p12Path).toString("binary")), password);
  const keyBag = forge.pki.oids.pkcs8ShroudedKeyBag as string;
  const certBag = forge.pki.oids.certBag as string;
  const key = p12.getBags({ bagType: keyBag })[keyBag]?.[0]?.key;
  const cert = p12.getBags({ bagType: certBag })[certBag]?.find((b: forge.pkcs12.Bag) => b.cert?.subject.getField("CN")?.value === name)?.cert;
  assert.ok(key && cert, "the .p12 holds the key and the certificate");
  return { key: forge.pki.privateKeyToPem(key), cert: forge.pki.certificateToPem(cert) };
}

describe("client certificates (mutual TLS) as a second factor", { timeout: 180_000 }, () => {
  let dir: string;
  let upstream: Server;
  let gateway: GatewayProcess;
  let rootCa: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-mtls-"));
    upstream = createServer(notebookStandIn((_req, res) => res.end("notebook stand-in\n")));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const port = (upstream.address() as AddressInfo).port;
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${port}
    tls: internal
    client_certificates: required
  - host: ${OPEN_SITE}
    upstream: http://127.0.0.1:${port}
    tls: internal
`);
    rootCa = readFileSync(join(dir, "storage", "ca", "root.crt"), "utf8");
  });

  after(async () => {
    await gateway?.stop();
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function get(host: string, client?: { key: string; cert: string }): Promise<{ status: number; body: string }> {
    const dispatcher = new Agent({ connect: { ca: rootCa, servername: host, ...(client ?? {}) } });
    const res = await request(`https://127.0.0.1:${gateway.httpsPort}/`, { headers: { host: `${host}:${gateway.httpsPort}` }, dispatcher });
    const body = await res.body.text();
    await dispatcher.close();
    return { status: res.statusCode, body };
  }

  it("allowed with a certificate from `gateway client-cert add`; missing, foreign and revoked ones get the page that says what to do", async () => {
    const alice = await addClient(gateway.configPath, "alice");
    const bob = await addClient(gateway.configPath, "bob");
    assert.deepEqual(await get(SITE, alice), { status: 200, body: "notebook stand-in\n" });

    const missing = await get(SITE);
    assert.equal(missing.status, 403);
    assert.match(missing.body, /Client certificate required/);
    assert.match(missing.body, /gateway client-cert add NAME/);

    const foreign = createTestCa(dir).issue("foreign", ["alice"]);
    const stranger = await get(SITE, { key: foreign.keyPem, cert: foreign.certPem });
    assert.equal(stranger.status, 403, "a certificate from another CA is not accepted");

    assert.equal((await get(OPEN_SITE)).status, 200, "a site without client_certificates needs none");

    const revoke = await runGateway(["client-cert", "revoke", "alice", "--config", gateway.configPath]);
    assert.equal(revoke.status, 0, revoke.stderr);
    const revoked = await waitFor("the revocation to take effect", async () => {
      const r = await get(SITE, alice);
      return r.status === 403 ? r : undefined;
    }, 10_000, 200);
    assert.match(revoked.body, /Client certificate revoked/);
    assert.equal((await get(SITE, bob)).status, 200, "other devices keep working");
  });

  it("Chromium with no client certificate imported gets the page that says what to install", async () => {
    const home = browserHome(join(dir, "chromium"), join(dir, "storage", "ca", "root.crt"));
    const context = await launchBrowser(join(dir, "chromium"), home, [SITE]);
    try {
      const page = await context.newPage();
      const response = await page.goto(`https://${SITE}:${gateway.httpsPort}/`);
      assert.equal(response?.status(), 403);
      assert.match(await page.innerText("body"), /Client certificate required[\s\S]*\.p12/);
    } finally {
      await context.close();
    }
  });
});
