import assert from "node:assert/strict";
import { once } from "node:events";
import { readdirSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent, request, type RequestOptions } from "node:https";
import { connect, type AddressInfo } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { waitFor } from "../support/processes.js";
import { loopbackLookup } from "../support/notebook-client.js";
import { Agent as UndiciAgent, request as undiciRequest } from "undici";
import { createTestBed, type TestCa } from "../support/test-ca.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

const SITE = "localhost";


/** An upstream that holds /hold until released (one request per connection: as many held, as many connections), and drains uploads. */
interface HoldingUpstream {
  readonly server: Server;
  readonly port: number;
  readonly held: ServerResponse[];
  maxHeld: number;
  release(): void;
}

async function startHoldingUpstream(): Promise<HoldingUpstream> {
  const upstream: Omit<HoldingUpstream, "server" | "port"> = {
    held: [],
    maxHeld: 0,
    release() {
      for (const res of this.held.splice(0)) res.end("released");
    },
  };
  const server = createServer(notebookStandIn((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === "/hold") {
      upstream.held.push(res);
      upstream.maxHeld = Math.max(upstream.maxHeld, upstream.held.length);
      return;
    }
    if (req.url === "/upload-reset") {
      req.once("data", () => req.socket.resetAndDestroy());
      return;
    }
    let bytes = 0;
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => res.end(JSON.stringify({ bytes })));
  }));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return Object.assign(upstream, { server, port: (server.address() as AddressInfo).port });
}

/** One HTTPS exchange; resolves with status, headers, body and whether it reused a kept-alive socket. */
function exchange(options: RequestOptions, body?: Buffer): Promise<{ status: number; headers: IncomingMessage["headers"]; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, reused: req.reusedSocket }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * The client-side timers and the caps that keep one busy or stuck notebook from exhausting the
 * gateway (README: limits and timeouts). Real gateway, real sockets on loopback.
 */
describe("limits and timeouts a one-person notebook never meets", { timeout: 120_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let upstream: HoldingUpstream;
  let gateway: GatewayProcess;
  let base: RequestOptions;

  before(async () => {
    let leaf;
    ({ dir, ca, leaf } = createTestBed("gateway-limits-", [SITE]));
    upstream = await startHoldingUpstream();
    const tls = `tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }`;
    const yaml = `listen: { address: 127.0.0.1, https: 0, http: 0 }\nstorage: ./storage\nadmin: false\ntimeouts: { headers: 2s }\nsites:\n  - host: ${SITE}\n    upstream: http://127.0.0.1:${upstream.port}\n    ${tls}`;
    gateway = await startGateway(dir, yaml);
    base = { host: "127.0.0.1", port: gateway.httpsPort, servername: SITE, ca: ca.certPem, headers: { host: `${SITE}:${gateway.httpsPort}` } };
  });

  after(async () => {
    await gateway?.stop();
    upstream?.release();
    upstream?.server.closeAllConnections();
    upstream?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps an idle connection for timeouts.client_idle, says so in Keep-Alive, and takes an upload on it after a pause", async () => {
    // Node's default closed idle connections after 5 s, racing a client that started a big
    // upload just then: `write EPIPE` with nothing logged and nothing reaching the notebook.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await exchange({ ...base, agent, path: "/small" });
      assert.equal(first.status, 200);
      assert.equal(first.headers["keep-alive"], "timeout=300", "README's 300 s, announced to the client");
      await sleep(6_000);
      const upload = await exchange({ ...base, agent, path: "/upload", method: "PUT", headers: { ...base.headers, "content-type": "application/octet-stream" } }, Buffer.alloc(20 * 1024 * 1024, 7));
      assert.equal(upload.status, 200);
      assert.deepEqual(JSON.parse(upload.body), { bytes: 20 * 1024 * 1024 });
      assert.ok(upload.reused, "the upload went over the connection kept alive for 6 s");
    } finally {
      agent.destroy();
    }
  });

  it("answers an upload whose notebook connection broke mid-way instead of leaving the client stuck sending the rest", async () => {
    // The 502 goes out while the client still sends: unless the gateway reads and drops the rest,
    // the connection fills up and the client, still writing, never reads its answer.
    const res = await undiciRequest(`https://${SITE}:${gateway.httpsPort}/upload-reset`, {
      method: "POST",
      body: Buffer.alloc(32 * 1024 * 1024, 1),
      dispatcher: new UndiciAgent({ connect: { ca: ca.certPem, lookup: loopbackLookup } }),
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(res.statusCode, 502);
    assert.match(await res.body.text(), /closed the connection/);
  });

  it("closes a connection whose headers are slower than timeouts.headers on :80 too", async () => {
    const socket = connect(gateway.httpPort ?? 0, "127.0.0.1");
    await once(socket, "connect");
    socket.write(`GET / HTTP/1.1\r\nHost: ${SITE}\r\n`);
    const started = Date.now();
    socket.resume();
    await once(socket, "close");
    // Node's default check interval (30 s) let slow headers linger ~50 s here.
    assert.ok(Date.now() - started < 10_000, `closed after ${Date.now() - started} ms with a 2 s headers timeout`);
  });

  it("holds at most 64 connections to the notebook and answers 503 with Retry-After past 256 waiting requests", async () => {
    const total = 64 + 256 + 10;
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    try {
      // From three loopback addresses: one address may hold at most 128 connections.
      const results = Array.from({ length: total }, (_, i) => exchange({ ...base, agent, path: "/hold", localAddress: `127.0.0.${2 + (i % 3)}` }));
      const busy = await waitFor("503 answers for the requests past the queue", async () => {
        const settled = await Promise.all(results.map((r) => Promise.race([r, sleep(0).then(() => null)])));
        const answered = settled.filter((r) => r !== null);
        return answered.length >= 10 ? answered : undefined;
      }, 30_000, 200);
      assert.ok(busy.every((r) => r?.status === 503 && r.headers["retry-after"] === "5"), JSON.stringify(busy.map((r) => r?.status)));
      assert.match(busy[0]?.body ?? "", /requests are already waiting for the notebook/);
      assert.equal(upstream.maxHeld, 64, "requests (each on its own connection) the notebook was given at once");
      // Everything that was waiting is served once the notebook answers.
      await waitFor("the notebook holds the requests it was given", () => (upstream.held.length === 64 ? true : undefined));
      const release = setInterval(() => upstream.release(), 20);
      const all = await Promise.all(results);
      clearInterval(release);
      assert.equal(all.filter((r) => r.status === 200).length, total - busy.length);
    } finally {
      agent.destroy();
    }
  });

  it("closes a refused WebSocket upgrade within 5 s even when the client keeps its side open", async () => {
    const fds = (): number => readdirSync(`/proc/${gateway.process.pid}/fd`).length;
    await sleep(500);
    const before = fds();
    // allowHalfOpen: when the gateway ends its side, this client does not end its own.
    const socket = tlsConnect({ host: "127.0.0.1", port: gateway.httpsPort, servername: SITE, ca: ca.certPem, allowHalfOpen: true } as ConnectionOptions);
    try {
      await once(socket, "secureConnect");
      socket.write(`GET /ws HTTP/1.1\r\nHost: ${SITE}:${gateway.httpsPort}\r\nOrigin: https://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      let answer = "";
      socket.on("data", (d: Buffer) => (answer += d.toString()));
      await waitFor("the 403", () => (answer.startsWith("HTTP/1.1 403 ") ? true : undefined));
      assert.ok(fds() >= before + 1, "the refused connection is open during the grace period");
      await waitFor("the gateway closing the refused socket", () => (fds() <= before ? true : undefined), 8_000, 100);
    } finally {
      socket.destroy();
    }
  });

  it("lets one client address hold at most 128 connections, so it cannot lock everyone else out", async () => {
    const hog = "127.0.0.9";
    const sockets: TLSSocket[] = [];
    const handshake = (localAddress: string): Promise<TLSSocket | null> =>
      new Promise((resolve) => {
        const tcp = connect({ host: "127.0.0.1", port: gateway.httpsPort, localAddress });
        const socket = tlsConnect({ socket: tcp, servername: SITE, ca: ca.certPem }, () => resolve(socket));
        socket.once("error", () => resolve(null));
        socket.once("close", () => resolve(null));
      });
    try {
      for (let i = 0; i < 128; i++) {
        const socket = await handshake(hog);
        assert.ok(socket, `connection ${i + 1} of 128 from one address`);
        sockets.push(socket);
      }
      assert.equal(await handshake(hog), null, "the 129th connection from the same address is closed");
      const other = await exchange({ ...base, path: "/small", localAddress: "127.0.0.10" });
      assert.equal(other.status, 200, "another address is served meanwhile");
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});
