import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { Agent } from "undici";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { loopbackLookup, NotebookClient } from "../support/notebook-client.js";
import { waitFor } from "../support/processes.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

const SITE = "jupyter.example.test";
const LOCKED_SITE = "private.example.test";
const RECORDER_SITE = "record.example.test";

/** A client whose connections come from another loopback address, as a second machine would. */
function clientFrom(localAddress: string, origin: string, ca: string): NotebookClient {
  // autoSelectFamily (happy eyeballs) would ignore localAddress in Node 20.
  return new NotebookClient(origin, ca, new Agent({ localAddress, autoSelectFamily: false, connect: { ca, lookup: loopbackLookup } }));
}

/** Sends raw bytes over TLS and returns the status line the gateway answers (or "closed"). */
function rawExchange(port: number, servername: string, ca: string, chunks: string[], gapMs = 0): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca }, async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) break;
        socket.write(chunk);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(answer.split("\r\n")[0] || "closed"));
    socket.setTimeout(40_000, () => socket.destroy());
  });
}

describe("closed by default: login guard, access lists, malformed requests, no secrets in logs", { timeout: 300_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter;
  let recorder: Server;
  const received: IncomingMessage[] = [];
  let gateway: GatewayProcess;
  let origin: string;

  before(async () => {
    const bed = createTestBed("gateway-security-", [SITE, LOCKED_SITE, RECORDER_SITE]);
    ({ dir, ca } = bed);
    const { leaf } = bed;
    recorder = createServer(notebookStandIn((req, res) => {
      received.push(req);
      req.resume();
      req.on("end", () => res.end("recorded"));
    }));
    await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
    jupyter = await startJupyter(join(dir, "jupyter"));
    const tls = `tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }`;
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${jupyter.port}
    ${tls}
  - host: ${LOCKED_SITE}
    upstream: http://127.0.0.1:${jupyter.port}
    ${tls}
    allow: [127.0.0.2, "::1/128"]
    deny: [127.0.0.3]
  - host: ${RECORDER_SITE}
    upstream: http://127.0.0.1:${(recorder.address() as AddressInfo).port}
    ${tls}
`);
    origin = `https://${SITE}:${gateway.httpsPort}`;
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    recorder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("50 wrong passwords: at most 5 reach the notebook, the rest get 429; another address still logs in; a reload does not reset", async (t) => {
    const attacker = new NotebookClient(origin, ca.certPem);
    const statuses: number[] = [];
    await (await attacker.request("GET", "/login")).body.text();
    for (let i = 0; i < 50; i++) {
      const res = await attacker.request("POST", "/login?next=%2Ftree", {
        body: new URLSearchParams({ password: `wrong-${i}`, _xsrf: attacker.cookies.get("_xsrf") ?? "" }).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      await res.body.text();
      statuses.push(res.statusCode);
      if (res.statusCode === 429) assert.ok(Number(res.headers["retry-after"]) > 0);
    }
    const reachedNotebook = (jupyter.process.output().match(/401 POST \/login/g) ?? []).length;
    t.diagnostic(`notebook saw ${reachedNotebook} of 50 attempts; gateway answered ${statuses.filter((s) => s === 429).length} with 429`);
    assert.equal(reachedNotebook, 5);
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(statuses.slice(5).every((s) => s === 429));
    await waitFor("the lock-out log line", () => gateway.events().find((e) => e.event === "guard.login_locked" && e.client === "127.0.0.1"));

    const other = clientFrom("127.0.0.2", origin, ca.certPem);
    await other.login(jupyter.password);
    const api = await other.request("GET", "/api/kernels");
    await api.body.text();
    assert.equal(api.statusCode, 200);

    gateway.process.child.kill("SIGHUP");
    await waitFor("reload", () => gateway.events().find((e) => e.event === "gateway.reloaded"));
    const afterReload = await attacker.request("POST", "/login", { body: "password=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
    await afterReload.body.text();
    assert.equal(afterReload.statusCode, 429);
  });

  it("30 wrong passwords sent at once from one address: still at most 5 reach the notebook (in-flight attempts count)", async (t) => {
    const burst = clientFrom("127.0.0.3", origin, ca.certPem);
    await (await burst.request("GET", "/login")).body.text();
    const before = (jupyter.process.output().match(/401 POST \/login/g) ?? []).length;
    const statuses = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const res = await burst.request("POST", "/login?next=%2Ftree", {
        body: new URLSearchParams({ password: `burst-${i}`, _xsrf: burst.cookies.get("_xsrf") ?? "" }).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      await res.body.text();
      return res.statusCode;
    }));
    // Jupyter logs each answer after sending it: wait for the lines of every 401 the clients got.
    const answered = statuses.filter((s) => s === 401).length;
    const logged = (): number => (jupyter.process.output().match(/401 POST \/login/g) ?? []).length - before;
    await waitFor("the notebook's log of each 401", () => logged() >= answered || undefined);
    const reached = logged();
    t.diagnostic(`notebook saw ${reached} of 30 concurrent attempts; gateway answered ${statuses.filter((s) => s === 429).length} with 429`);
    assert.ok(reached <= 5, `${reached} concurrent guesses reached the notebook`);
    assert.equal(statuses.filter((s) => s === 401).length, reached);
    assert.equal(statuses.filter((s) => s === 429).length, 30 - reached);
  });

  it("allow and deny lists decide by client address before anything reaches the notebook", async () => {
    const url = `https://${LOCKED_SITE}:${gateway.httpsPort}`;
    // Every answer is 403: the gateway's for refused addresses, the notebook's own (no login) for the allowed one.
    for (const [address, allowed] of [["127.0.0.1", false], ["127.0.0.2", true], ["127.0.0.3", false]] as const) {
      const res = await clientFrom(address, url, ca.certPem).request("GET", "/api/status");
      const body = await res.body.text();
      assert.equal(res.statusCode, 403, address);
      if (allowed) assert.doesNotMatch(body, /Address not allowed/, "allowed: the notebook answered");
      else assert.match(body, /Address not allowed/, address);
    }
  });

  it("malformed and smuggling requests get a 4xx or a closed connection; the upstream never sees them", async () => {
    const host = `Host: ${RECORDER_SITE}\r\n`;
    const cases: Array<[string, string[], RegExp]> = [
      ["Content-Length and Transfer-Encoding together", [`POST / HTTP/1.1\r\n${host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${host}\r\n`], /^HTTP\/1\.1 400|^closed$/],
      ["two different Content-Lengths", [`POST / HTTP/1.1\r\n${host}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`], /^HTTP\/1\.1 400|^closed$/],
      ["Transfer-Encoding other than chunked last", [`POST / HTTP/1.1\r\n${host}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`], /^HTTP\/1\.1 400|^closed$/],
      ["bad chunk size", [`POST / HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`], /^HTTP\/1\.1 400|^closed$/],
      ["oversized headers", [`GET / HTTP/1.1\r\n${host}X-Big: ${"a".repeat(20_000)}\r\n\r\n`], /^HTTP\/1\.1 431|^closed$/],
      ["space before colon", [`GET / HTTP/1.1\r\n${host}Content-Length : 5\r\n\r\nabcde`], /^HTTP\/1\.1 400|^closed$/],
      ["upgrade with POST", [`POST /api/kernels/x/channels HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`], /^HTTP\/1\.1 400/],
      ["upgrade to something else", [`GET / HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`], /^HTTP\/1\.1 400/],
      ["no Host", ["GET / HTTP/1.1\r\n\r\n"], /^HTTP\/1\.1 400/],
    ];
    for (const [name, chunks, expected] of cases) {
      const before = received.length;
      const answer = await rawExchange(gateway.httpsPort, RECORDER_SITE, ca.certPem, chunks);
      assert.match(answer, expected, name);
      assert.equal(received.length, before, `${name}: the upstream received nothing`);
    }
    // The same connection, well-formed, does reach the upstream: the checks above are not vacuous.
    const ok = await rawExchange(gateway.httpsPort, RECORDER_SITE, ca.certPem, [`GET /fine HTTP/1.1\r\n${host}Connection: close\r\n\r\n`]);
    assert.match(ok, /^HTTP\/1\.1 200/);
    assert.equal(received.at(-1)?.url, "/fine");
  });

  it("slow headers (slowloris) are cut after the 20 s headers timeout", async (t) => {
    const started = performance.now();
    const before = received.length;
    const answer = await rawExchange(gateway.httpsPort, RECORDER_SITE, ca.certPem, ["GET /slow HTTP/1.1\r\n", ...Array.from({ length: 40 }, (_, i) => `X-Drip-${i}: 1\r\n`)], 1000);
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`slow-header connection ended after ${seconds.toFixed(1)} s: ${answer}`);
    assert.ok(seconds < 25, `cut after ${seconds} s`);
    assert.match(answer, /^HTTP\/1\.1 408|^closed$/);
    assert.equal(received.length, before);
  });

  it("no password, cookie or token value appears in the gateway's logs", async () => {
    const client = clientFrom("127.0.0.4", origin, ca.certPem); // 127.0.0.1 is locked out by the first test
    await client.login(jupyter.password);
    const secretQuery = "s3cr3t-token-value";
    await (await client.request("GET", `/api/kernels?token=${secretQuery}`, { headers: { authorization: "token auth-header-secret" } })).body.text();
    await (await client.request("GET", `/no-such-page?token=${secretQuery}`)).body.text();
    const log = gateway.process.output() + readFileSync(join(dir, "storage", "state", "login-failures.json"), "utf8");
    for (const secret of [jupyter.password ?? "", ...client.cookies.values(), secretQuery, "auth-header-secret", "wrong-1"]) {
      assert.ok(secret.length > 0);
      assert.equal(log.includes(secret), false, `a secret leaked into the logs: ${secret.slice(0, 6)}…`);
    }
  });
});
