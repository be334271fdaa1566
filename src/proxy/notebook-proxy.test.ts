import assert from "node:assert/strict";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { DEFAULT_TIMEOUTS } from "../config/gateway-config.js";
import { parseConfig } from "../config/load-config.js";
import type { UpstreamHealth } from "../tunnel/upstream-monitor.js";
import type { Logger } from "../platform/logger.js";
import { NotebookProxy } from "./notebook-proxy.js";

/**
 * The request path's own failure handling, against an in-process upstream: what a client sees
 * when the notebook cuts a body, when the client goes away, and when a kept-alive upstream
 * socket turns out to be closed (retried once).
 */
describe("NotebookProxy.web", () => {
  const events: string[] = [];
  const logger: Logger = { info: (e) => events.push(e), warn: (e) => events.push(e), error: (e) => events.push(e) };
  const upstreamClosed: string[] = [];
  let resetNext = false;
  /** Upstream sockets that answer every request by closing, as a restarted notebook's old ones do. */
  const staleSockets = new Set<Socket>();
  const openSockets = new Set<Socket>();
  let upstream: Server;
  let front: Server;
  let proxy: NotebookProxy;
  /** Stands in for the upstream monitor: proves the notebook at once, and counts how often it had to. */
  const gate = {
    proven: true,
    probes: 0,
    notebook: "protected" as UpstreamHealth["notebook"],
    health: (): UpstreamHealth => ({ tunnel: null, notebook: gate.notebook, probeError: null, checkedAt: new Date(), proven: gate.proven }),
    whenProven(): Promise<void> | null {
      if (gate.proven) return null;
      gate.probes++;
      gate.proven = true;
      return Promise.resolve();
    },
    invalidate(): void {
      gate.proven = false;
    },
    connectionOpened(): void {},
    connectionClosed(): void {},
    markUnprotected(): void {
      gate.notebook = "unprotected";
      gate.proven = false;
    },
  };

  before(async () => {
    upstream = createServer((req, res) => {
      req.once("close", () => upstreamClosed.push(req.url ?? ""));
      if (staleSockets.has(req.socket)) {
        // The notebook exits: every socket it had closes at once, before the proxy saw any of it.
        for (const socket of staleSockets) (socket as Socket).destroy();
      } else if (resetNext) {
        resetNext = false;
        req.socket.destroy();
      } else if (req.url === "/api/contents/secret.txt") {
        res.writeHead(200, { "content-type": "application/json" }).end('{"content": "the private key"}');
      } else if (req.url === "/held") {
        setTimeout(() => res.end("held"), 50);
      } else if (req.url === "/page") {
        res.writeHead(200, { "set-cookie": "a=1; Path=/", connection: "keep-alive, x-private", "x-private": "hop", "content-type": "text/plain" });
        res.end("page");
      } else if (req.url === "/cut") {
        res.writeHead(200, { "content-length": "100000" });
        res.write(Buffer.alloc(1000, "c"), () => setTimeout(() => req.socket.destroy(), 20));
      } else if (req.url === "/slow") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const timer = setInterval(() => res.write(Buffer.alloc(1000)), 10);
        res.once("close", () => clearInterval(timer));
      }
    });
    upstream.on("connection", (socket: Socket) => {
      openSockets.add(socket);
      socket.once("close", () => openSockets.delete(socket));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const [site] = parseConfig(`sites:\n  - host: localhost\n    upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}\n    tls: internal\n`, "/tmp/gateway.yaml", "gateway.yaml").sites;
    assert.ok(site);
    proxy = new NotebookProxy(logger, gate, () => undefined, DEFAULT_TIMEOUTS);
    front = createServer((req, res) => proxy.web(req, res, site, "https://localhost"));
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  });

  after(async () => {
    proxy.close();
    for (const server of [front, upstream]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const get = (path: string): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => request({ host: "127.0.0.1", port: (front.address() as AddressInfo).port, path, headers: { host: "localhost" } }, resolve).on("error", reject).end());
  const body = (res: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve(text));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("aborted")));
    });

  it("relays status, body and headers: cookies made Secure, hop-by-hop ones (and those Connection names) dropped, security headers added", async () => {
    const res = await get("/page");
    assert.equal(res.statusCode, 200);
    assert.equal(await body(res), "page");
    assert.deepEqual(res.headers["set-cookie"], ["a=1; Path=/; Secure"]);
    assert.equal(res.headers["x-private"], undefined);
    assert.equal(res.headers["content-type"], "text/plain");
    assert.match(String(res.headers["content-security-policy"]), /^frame-ancestors 'self'$/);
  });

  it("cuts the client's response when the notebook cuts the body, so it never looks complete", async () => {
    const res = await get("/cut");
    assert.equal(res.statusCode, 200);
    await assert.rejects(body(res));
    assert.ok(events.includes("proxy.upstream_reset"), events.join());
  });

  it("aborts the upstream request when the client goes away mid-download", async () => {
    const res = await get("/slow");
    res.once("data", () => res.destroy());
    for (let i = 0; i < 100 && !upstreamClosed.includes("/slow"); i++) await sleep(20);
    assert.ok(upstreamClosed.includes("/slow"), "the upstream request is still open");
    for (let i = 0; i < 50 && !events.includes("proxy.client_aborted"); i++) await sleep(20);
    assert.ok(events.includes("proxy.client_aborted"), events.join());
  });

  it("retries a GET once when the kept-alive upstream socket was closed meanwhile", async () => {
    await body(await get("/page"));
    resetNext = true;
    const res = await get("/page");
    assert.equal(res.statusCode, 200);
    assert.equal(await body(res), "page");
    assert.ok(events.includes("proxy.retry_stale_connection"), events.join());
  });

  it("relays an OPTIONS to the API without credentials (Jupyter answers preflights with 200) and keeps the notebook proven", async () => {
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request({ host: "127.0.0.1", port: (front.address() as AddressInfo).port, path: "/api/contents/secret.txt", method: "OPTIONS", headers: { host: "localhost" } }, resolve).on("error", reject).end(),
    );
    await body(res);
    assert.equal(res.statusCode, 200);
    assert.equal(gate.notebook, "protected");
  });

  it("never relays the answer that shows the notebook is open (an API call without credentials answered 200), and refuses from then on", async () => {
    const res = await get("/api/contents/secret.txt");
    assert.equal(res.statusCode, 503);
    const text = await body(res);
    assert.doesNotMatch(text, /private key/);
    assert.match(text, /This notebook has no password/);
    assert.equal(gate.notebook, "unprotected");
    gate.notebook = "protected";
    gate.proven = true;
  });

  it("retries on a new connection when every kept-alive socket is stale (the notebook was restarted)", async () => {
    // Three requests at once, so the pool holds (at least) three kept-alive sockets.
    await Promise.all([1, 2, 3].map(async () => body(await get("/held"))));
    assert.ok(openSockets.size >= 3, `${openSockets.size} upstream sockets`);
    for (const socket of openSockets) staleSockets.add(socket);
    events.length = 0;
    gate.probes = 0;
    for (let i = 0; i < 3; i++) {
      const res = await get("/page");
      assert.equal(res.statusCode, 200);
      assert.equal(await body(res), "page");
    }
    assert.deepEqual(events, ["proxy.retry_stale_connection"], "one retry, then the stale sockets are never used again");
    assert.ok(gate.probes >= 1, "the retry waited for the notebook to be proven again: it may be a new one");
  });
});

