import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { servedCertificate } from "../support/tls-probe.js";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter, type JupyterKind } from "../support/jupyter.js";
import { NotebookClient } from "../support/notebook-client.js";
import { settleAll, waitFor } from "../support/processes.js";
import { createTestBed, replaceFile, type TestCa } from "../support/test-ca.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

const SITE = "jupyter.example.test";
const RECORDER_SITE = "record.example.test";

/** The kernel round trip runs against each Jupyter users put behind the gateway, one site each. */
const VARIANTS: ReadonlyArray<{ kind: JupyterKind; site: string }> = [
  { kind: "notebook-6.4", site: SITE },
  { kind: "jupyterlab-4", site: "lab.example.test" },
  { kind: "notebook-7", site: "nb7.example.test" },
];

/** A small upstream that answers every request with what it received, to see what the notebook would. */
async function startRecorder(): Promise<Server> {
  const server = createServer(notebookStandIn((req, res) => {
    res.setHeader("content-type", "application/json");
    res.setHeader("set-cookie", "probe=1; Path=/");
    if (req.url === "/redirect") res.setHeader("location", `http://${req.headers.host}/elsewhere?x=1`);
    res.writeHead(req.url === "/redirect" ? 302 : 200).end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

describe("gateway in front of a real Jupyter notebook", { timeout: 300_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter;
  const jupyters = new Map<JupyterKind, Jupyter>();
  let recorder: Server;
  let gateway: GatewayProcess;
  let leaf: ReturnType<TestCa["issue"]>;
  let origin: string;

  before(async () => {
    ({ dir, ca, leaf } = createTestBed("gateway-e2e-", [SITE, RECORDER_SITE]));
    const modern = VARIANTS.filter((v) => v.site !== SITE);
    const modernLeaf = ca.issue("modern", modern.map((v) => v.site));
    await settleAll([
      startRecorder().then((r) => (recorder = r)),
      ...VARIANTS.map(async ({ kind }) => jupyters.set(kind, await startJupyter(join(dir, kind), undefined, kind))),
    ]);
    jupyter = jupyters.get("notebook-6.4") as Jupyter;
    const recorderPort = (recorder.address() as AddressInfo).port;
    gateway = await startGateway(dir, testConfigYaml([
      { host: SITE, upstreamPort: jupyter.port, certPath: leaf.certPath, keyPath: leaf.keyPath },
      { host: RECORDER_SITE, upstreamPort: recorderPort, certPath: leaf.certPath, keyPath: leaf.keyPath },
      ...modern.map((v) => ({ host: v.site, upstreamPort: (jupyters.get(v.kind) as Jupyter).port, certPath: modernLeaf.certPath, keyPath: modernLeaf.keyPath })),
    ]));
    origin = `https://${SITE}:${gateway.httpsPort}`;
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([...jupyters.values()].map((j) => j.stop()));
    recorder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const { kind, site } of VARIANTS) {
    it(`logs in and runs 1+1 on a kernel over wss (${kind})`, async (t) => {
      const started = performance.now();
      const client = new NotebookClient(`https://${site}:${gateway.httpsPort}`, ca.certPem);
      await client.login((jupyters.get(kind) as Jupyter).password);
      const kernel = await client.startKernel();
      const channels = await client.openChannels(kernel);
      assert.equal(await channels.execute("1+1"), "2");
      channels.close();
      t.diagnostic(`login, new kernel and round trip took ${(performance.now() - started).toFixed(0)} ms`);
    });
  }

  it("refuses a wrong password the way the notebook does", async () => {
    const client = new NotebookClient(origin, ca.certPem);
    await assert.rejects(client.login("wrong"), /answered 401/);
    const res = await client.request("GET", "/api/kernels");
    await res.body.text();
    assert.equal(res.statusCode, 403);
  });

  it("refuses a cross-site Origin for WebSocket upgrades and state changes, before the notebook", async () => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    const kernel = await client.startKernel();
    await assert.rejects(client.openChannels(kernel, "https://evil.example"), /HTTP 403/);
    const post = await client.request("POST", "/api/kernels", { body: "{}", headers: { origin: "https://evil.example", "content-type": "application/json" } });
    assert.equal(post.statusCode, 403);
    assert.match(await post.body.text(), /Cross-site request refused/);
    // Same name on another port is another origin.
    const otherPort = await client.request("DELETE", `/api/kernels/${kernel}`, { headers: { origin: `https://${SITE}:1` } });
    await otherPort.body.text();
    assert.equal(otherPort.statusCode, 403);
    const own = await client.request("DELETE", `/api/kernels/${kernel}`);
    await own.body.text();
    assert.equal(own.statusCode, 204);
  });

  it("presents Host, Origin and Referer as the notebook expects and sets X-Forwarded-* itself", async () => {
    const client = new NotebookClient(`https://${RECORDER_SITE}:${gateway.httpsPort}`, ca.certPem);
    const upstream = `127.0.0.1:${(recorder.address() as AddressInfo).port}`;
    const res = await client.request("POST", "/echo?q=1", {
      body: "x",
      headers: {
        referer: `https://${RECORDER_SITE}:${gateway.httpsPort}/tree?a=b`,
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "http",
        forwarded: "for=203.0.113.9",
      },
    });
    assert.equal(res.statusCode, 200);
    const seen = (await res.body.json()) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, "/echo?q=1");
    assert.equal(seen.headers.host, upstream);
    assert.equal(seen.headers.origin, `http://${upstream}`);
    assert.equal(seen.headers.referer, `http://${upstream}/tree?a=b`);
    assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert.equal(seen.headers["x-forwarded-proto"], "https");
    assert.equal(seen.headers.forwarded, undefined);
    // Back to the browser: cookies are Secure, redirects point at the public site, security headers are on.
    assert.match(String(res.headers["set-cookie"]), /probe=1; Path=\/; Secure/);
    assert.equal(res.headers["strict-transport-security"], "max-age=31536000");
    assert.equal(res.headers["x-content-type-options"], "nosniff");
    const redirect = await client.request("GET", "/redirect");
    await redirect.body.text();
    assert.equal(redirect.headers.location, `https://${RECORDER_SITE}:${gateway.httpsPort}/elsewhere?x=1`);
  });

  it("answers an unknown name with 421 and never forwards it", async () => {
    // TLS for the site's name, then a Host the gateway does not serve.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: "127.0.0.1", port: gateway.httpsPort, servername: SITE, ca: ca.certPem, path: "/api/status", headers: { host: "unknown.example.test" } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 421);
    const denied = await waitFor("the guard.denied log line", () => gateway.events().find((e) => e.event === "guard.denied" && e.status === 421));
    assert.equal(denied.host, "unknown.example.test");
  });

  it("redirects plain HTTP to https with 308, keeping path and query", async () => {
    const res = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = httpRequest({ host: "127.0.0.1", port: gateway.httpPort as number, path: "/tree?a=1", headers: { host: `${SITE}:${gateway.httpPort}` } }, (r) => {
        r.resume();
        resolve({ status: r.statusCode ?? 0, location: r.headers.location });
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(res.status, 308);
    assert.equal(res.location, `https://${SITE}:${gateway.httpsPort}/tree?a=1`);
  });

  it("streams a 200 MB upload and download byte-exact", async (t) => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    const chunk = Buffer.alloc(3 * 349_525); // a multiple of 3, so base64 chunks concatenate cleanly
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
    const chunks = 200;
    const upload = createHash("sha256");
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from('{"type":"file","format":"base64","content":"');
      for (let i = 0; i < chunks; i++) {
        chunk.writeUInt32BE(i, 0);
        upload.update(chunk);
        yield Buffer.from(chunk.toString("base64"));
      }
      yield Buffer.from('"}');
    }
    const size = chunk.length * chunks;
    let started = performance.now();
    const put = await client.request("PUT", "/api/contents/big.bin", { body: Readable.from(body()), headers: { "content-type": "application/json" } });
    const putText = await put.body.text();
    assert.equal(put.statusCode, 201, putText.slice(0, 300));
    const uploadMBps = size / 1e6 / ((performance.now() - started) / 1000);

    started = performance.now();
    const get = await client.request("GET", "/files/big.bin", { headers: { referer: `${origin}/tree` } });
    assert.equal(get.statusCode, 200);
    const download = createHash("sha256");
    let received = 0;
    for await (const part of get.body) {
      download.update(part as Buffer);
      received += (part as Buffer).length;
    }
    const downloadMBps = size / 1e6 / ((performance.now() - started) / 1000);
    assert.equal(received, size);
    assert.equal(download.digest("hex"), upload.digest("hex"));
    t.diagnostic(`200 MB through the gateway: upload ${uploadMBps.toFixed(0)} MB/s (base64 JSON, decoded by Jupyter), download ${downloadMBps.toFixed(0)} MB/s`);
  });

  it("swaps the certificate while a kernel WebSocket stays open", async (t) => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    const channels = await client.openChannels(await client.startKernel());
    assert.equal(await channels.execute("x = 20; x + 1"), "21");
    const before = await servedCertificate(gateway.httpsPort, SITE, ca.certPem);
    const next = ca.issue("site-renewed", [SITE, RECORDER_SITE]);
    const started = performance.now();
    replaceFile(leaf.keyPath, next.keyPem);
    replaceFile(leaf.certPath, next.certPem);
    const after = await waitFor("the new certificate on new handshakes", async () => {
      const cert = await servedCertificate(gateway.httpsPort, SITE, ca.certPem);
      return cert.fingerprint256 !== before.fingerprint256 ? cert : undefined;
    }, 15_000, 200);
    t.diagnostic(`new certificate served ${(performance.now() - started).toFixed(0)} ms after the files changed`);
    assert.equal(after.fingerprint256, new X509Certificate(next.certPem).fingerprint256);
    assert.equal(channels.ws.readyState, channels.ws.OPEN);
    assert.equal(await channels.execute("x * 2"), "40");
    channels.close();
  });

  it("answers 502 with the fix while the notebook is down, and recovers when it is back", async () => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    await jupyter.stop();
    const down = await client.request("GET", "/api/kernels");
    const page = await down.body.text();
    assert.equal(down.statusCode, 502);
    assert.match(page, /The notebook is not reachable/);
    assert.match(page, /ssh -N -L 127\.0\.0\.1:\d+:localhost:8888/);
    assert.doesNotMatch(page, /at .*\.js:\d+/); // no stack trace
    await jupyter.start();
    const up = await client.request("GET", "/api/kernels");
    await up.body.text();
    assert.equal(up.statusCode, 200);
  });
});
