import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { servedCertificate } from "../support/tls-probe.js";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { NotebookClient } from "../support/notebook-client.js";
import { freePort, waitFor } from "../support/processes.js";
import { startPebble, type Pebble } from "../support/pebble.js";

const SITE = "jupyter.example.test";

function acmeConfig(ports: { https: number; http: number }, directoryUrl: string, upstreamPort: number, storage: string, challenge = "http-01"): string {
  return `listen: { address: 127.0.0.1, https: ${ports.https}, http: ${ports.http} }
storage: ${storage}
admin: false
acme:
  email: admin@example.test
  directory: ${directoryUrl}
  challenge: ${challenge}
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${upstreamPort}
`;
}

describe("Let's Encrypt over ACME, against real pebble", { timeout: 300_000 }, () => {
  let dir: string;
  let jupyter: Jupyter;
  let pebble: Pebble;
  let gateway: GatewayProcess;
  let ports: { https: number; http: number };
  let env: Record<string, string>;
  let storage: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-acme-"));
    storage = join(dir, "storage");
    ports = { https: await freePort(), http: await freePort() };
    [jupyter, pebble] = await Promise.all([startJupyter(join(dir, "jupyter")), startPebble(join(dir, "pebble"), { httpPort: ports.http, tlsPort: ports.https })]);
    // The gateway trusts the ACME server the way Node does: system store plus NODE_EXTRA_CA_CERTS.
    env = { NODE_EXTRA_CA_CERTS: pebble.httpsCaPath };
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([jupyter?.stop(), pebble?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serve obtains a certificate over HTTP-01 at start; a client trusting only pebble's root reaches the notebook", async (t) => {
    const started = performance.now();
    gateway = await startGateway(dir, acmeConfig(ports, pebble.directoryUrl, jupyter.port, storage), env);
    const root = await pebble.issuingRoot();
    const cert = await waitFor("a certificate from pebble", () => servedCertificate(ports.https, SITE, root).catch(() => undefined), 30_000, 100);
    t.diagnostic(`gateway serve start → trusted handshake: ${(performance.now() - started).toFixed(0)} ms`);
    assert.match(cert.subjectAltName ?? "", /DNS:jupyter\.example\.test/);
    const client = new NotebookClient(`https://${SITE}:${ports.https}`, root);
    await client.login(jupyter.password);
    const status = await client.request("GET", "/api/status");
    await status.body.text();
    assert.equal(status.statusCode, 200);
    assert.equal(statSync(join(storage, "certificates", `${SITE}.pem`)).mode & 0o777, 0o600);
    assert.equal(statSync(join(storage, "acme", "account.key")).mode & 0o777, 0o600);
    assert.equal(statSync(storage).mode & 0o777, 0o700);
    assert.ok(gateway.events().some((e) => e.event === "cert.temporary"), "served a temporary certificate while ordering");
  });

  it("renew from cron does nothing when not due, and --quiet then prints nothing", async () => {
    const r = await runGateway(["renew", "--config", gateway.configPath, "--quiet"], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "");
    const loud = await runGateway(["renew", "--config", gateway.configPath], env);
    assert.match(loud.stdout, /ok {6}jupyter\.example\.test: not due until /);
    assert.doesNotMatch(loud.stderr, /acme\.responder/, "no order, so no challenge responder");
  });

  it("renew --force in a separate process while serve holds the ports: the running gateway serves the new certificate, an open kernel WebSocket stays", async (t) => {
    const root = await pebble.issuingRoot();
    const client = new NotebookClient(`https://${SITE}:${ports.https}`, root);
    await client.login(jupyter.password);
    const channels = await client.openChannels(await client.startKernel());
    assert.equal(await channels.execute("n = 41; n + 1"), "42");
    const before = await servedCertificate(ports.https, SITE, root);

    const r = await runGateway(["renew", "--config", gateway.configPath, "--force", "--quiet"], env);
    t.diagnostic(`gateway renew --force took ${r.ms.toFixed(0)} ms`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^renewed jupyter\.example\.test: valid until .*, issuer .*Pebble/m);

    const started = performance.now();
    const after = await waitFor("the new serial on a new handshake", async () => {
      const c = await servedCertificate(ports.https, SITE, root);
      return c.serialNumber !== before.serialNumber ? c : undefined;
    }, 15_000, 100);
    t.diagnostic(`running gateway served the renewed certificate ${(performance.now() - started).toFixed(0)} ms after renew exited`);
    assert.equal(after.fingerprint256, new X509Certificate(readFileSync(join(storage, "certificates", `${SITE}.pem`))).fingerprint256);
    assert.equal(channels.ws.readyState, channels.ws.OPEN);
    assert.equal(await channels.execute("n * 2"), "82");
    channels.close();
  });

  it("two renews at once place one order", async () => {
    rmSync(join(storage, "certificates", `${SITE}.pem`)); // missing → due for both
    const [a, b] = await Promise.all([runGateway(["renew", "--config", gateway.configPath], env), runGateway(["renew", "--config", gateway.configPath], env)]);
    assert.equal(a.status, 0, a.stdout + a.stderr);
    assert.equal(b.status, 0, b.stdout + b.stderr);
    const lines = [a.stdout, b.stdout].join("");
    assert.equal(lines.match(/^renewed /gm)?.length, 1, lines);
    // The other one either waited on the lock and found the new certificate, or started after it was saved.
    assert.equal(lines.match(/renewed by another gateway process|not due until/g)?.length, 1, lines);
  });

  it("status shows issuer, expiry and when renewal is due", async () => {
    const r = await runGateway(["status", "--config", gateway.configPath]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /jupyter\.example\.test \(tls: acme\)\n {2}issuer: +.*Pebble.*\n {2}expires: +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ days\)\n {2}renewal: +renews on \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ (days|hours)\)(, in the CA's ARI window)?\n {2}last try: +\S+ succeeded/);
  });

  it("a CA that cannot be reached: one clear line, exit 1, the working certificate stays", async () => {
    const before = readFileSync(join(storage, "certificates", `${SITE}.pem`), "utf8");
    const deadPort = await freePort();
    const config = join(dir, "dead-ca.yaml");
    writeFileSync(config, acmeConfig(ports, `https://127.0.0.1:${deadPort}/dir`, jupyter.port, storage));
    const r = await runGateway(["renew", "--config", config, "--force", "--quiet"], env);
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`^failed  jupyter\\.example\\.test: cannot reach the ACME directory https://127\\.0\\.0\\.1:${deadPort}/dir \\(ECONNREFUSED\\); check acme\\.directory`, "m"));
    assert.ok(r.ms < 20_000, `gave up after ${r.ms} ms`);
    assert.equal(readFileSync(join(storage, "certificates", `${SITE}.pem`), "utf8"), before);
    const status = await runGateway(["status", "--config", gateway.configPath]);
    assert.match(status.stdout, /last try: +\S+ failed: cannot reach the ACME directory/);
  });
});
