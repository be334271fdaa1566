import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { connect as connectTls } from "node:tls";
import { after, before, describe, it } from "node:test";
import { Agent, request, type Dispatcher } from "undici";
import WebSocket from "ws";
import type { GatewayProcess } from "../../test/support/gateway-process.js";
import { startJupyter, type Jupyter } from "../../test/support/jupyter.js";
import { startGatewayAndExportedNginx } from "../../test/support/nginx.js";
import { loopbackLookup, NotebookClient, trustingAgent } from "../../test/support/notebook-client.js";
import type { TestProcess } from "../../test/support/processes.js";
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from "../../test/support/recording-upstream.js";
import { createTestBed } from "../../test/support/test-ca.js";

/**
 * Real nginx running `gateway export-nginx`'s output and the real gateway, both on the same
 * gateway.yaml (only the port differs), in front of the same upstreams: a password-protected
 * Jupyter notebook and a recording server. The same matrix goes through both; what the upstream
 * receives and what the client receives are compared after normalising.
 */

const bed = createTestBed("nginx-equivalence-", ["notebook.test", "record.test"]);
let jupyter: Jupyter;
let upstream: RecordingUpstream;
let gateway: GatewayProcess;
let nginx: TestProcess;
let nginxPort: number;
const dispatcher = trustingAgent(bed.ca.certPem);
/** For a Host the proxies do not serve: TLS still asks for (and checks) a name they do serve. */
const servedNameDispatcher = new Agent({
  // undici takes the TLS name from the Host header; this connector verifies record.test instead.
  connect: (options, callback) => {
    const socket = connectTls({ host: "127.0.0.1", port: Number(options.port), servername: "record.test", ca: bed.ca.certPem });
    socket.once("secureConnect", () => callback(null, socket));
    socket.once("error", (err) => callback(err, null));
  },
});

function gatewayYaml(httpsPort: number): string {
  const tls = `{ cert: ${bed.leaf.certPath}, key: ${bed.leaf.keyPath} }`;
  return [
    `listen: { address: 127.0.0.1, https: ${httpsPort}, http: false }`,
    "storage: ./storage",
    "admin: false",
    "sites:",
    "  - host: notebook.test",
    `    upstream: http://127.0.0.1:${jupyter.port}`,
    `    tls: ${tls}`,
    "  - host: record.test",
    `    upstream: http://127.0.0.1:${upstream.port}`,
    `    tls: ${tls}`,
    "    allow_unprotected_upstream: true",
    "",
  ].join("\n");
}

before(async () => {
  jupyter = await startJupyter(join(bed.dir, "jupyter"));
  upstream = await startRecordingUpstream();
  ({ gateway, nginx, nginxPort } = await startGatewayAndExportedNginx(bed.dir, gatewayYaml));
});

after(async () => {
  await nginx?.stop();
  await gateway?.stop();
  await jupyter?.stop();
  await upstream?.stop();
  await dispatcher.close();
  await servedNameDispatcher.close();
  rmSync(bed.dir, { recursive: true, force: true });
});

type Proxy = "gateway" | "nginx";
const portOf = (proxy: Proxy): number => (proxy === "gateway" ? gateway.httpsPort : nginxPort);

/** Headers that describe the connection, not the message (RFC 9110 §7.6.1), or the moment. */
const TRANSPORT_HEADERS = new Set(["date", "connection", "keep-alive", "server", "transfer-encoding", "content-length"]);

/** One exchange as seen at both ends, with this proxy's port written as PORT. */
interface Observation {
  readonly upstream: Record<string, unknown> | null;
  readonly client: Record<string, unknown>;
}

function normalise(headers: Record<string, unknown>, port: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers).sort(([a], [b]) => a.localeCompare(b))) {
    if (TRANSPORT_HEADERS.has(name) || value === undefined) continue;
    out[name] = String(Array.isArray(value) ? value.join(" | ") : value).replaceAll(`:${port}`, ":PORT");
  }
  return out;
}

function describeUpstream(r: RecordedRequest | undefined, port: number): Record<string, unknown> | null {
  if (!r) return null;
  return { method: r.method, url: r.url, headers: normalise(r.headers, port), body: `${r.bodyLength} bytes sha256:${r.bodySha256.slice(0, 16)}`, framing: r.headers["transfer-encoding"] ?? (r.headers["content-length"] === undefined ? "none" : "content-length") };
}

interface Case {
  readonly name: string;
  readonly method: Dispatcher.HttpMethod;
  readonly path: string;
  readonly host?: (port: number) => string;
  readonly headers?: Record<string, string>;
  /** Body size in bytes, sent with Content-Length, or chunked when `chunked`. */
  readonly bodyBytes?: number;
  readonly chunked?: boolean;
}

function body(bytes: number, chunked: boolean): Dispatcher.DispatchOptions["body"] {
  const block = Buffer.alloc(Math.min(bytes, 1 << 20), "n");
  if (!chunked) return bytes === 0 ? null : Buffer.concat(Array.from({ length: Math.ceil(bytes / block.length) }, () => block)).subarray(0, bytes);
  return Readable.from((function* () {
    for (let sent = 0; sent < bytes; sent += block.length) yield block.subarray(0, Math.min(block.length, bytes - sent));
  })());
}

async function observe(proxy: Proxy, c: Case): Promise<Observation & { ms: number }> {
  const port = portOf(proxy);
  const before = upstream.requests.length;
  const started = performance.now();
  const res = await request(`https://record.test:${port}${c.path}`, {
    method: c.method,
    dispatcher: c.host ? servedNameDispatcher : dispatcher,
    headers: { host: c.host ? c.host(port) : `record.test:${port}`, ...c.headers },
    body: c.bodyBytes === undefined ? null : body(c.bodyBytes, c.chunked ?? false),
  });
  const received = Buffer.from(await res.body.arrayBuffer());
  const ms = performance.now() - started;
  const reached = upstream.requests.slice(before);
  assert.ok(reached.length <= 1, `${c.name} via ${proxy}: ${reached.length} upstream requests`);
  return {
    ms,
    upstream: describeUpstream(reached[0], port),
    client: { status: res.statusCode, headers: normalise(res.headers, port), body: createHash("sha256").update(received).digest("hex").slice(0, 16) },
  };
}

const MB = 1 << 20;
const MATRIX: readonly Case[] = [
  { name: "GET, no body", method: "GET", path: "/" },
  { name: "GET with query string", method: "GET", path: "/search?q=a+b&x=%2F%3F&empty=" },
  { name: "GET encoded path", method: "GET", path: "/files/a%20b/%E2%9C%93/c%2Fd.txt" },
  { name: "POST 0 bytes", method: "POST", path: "/upload", bodyBytes: 0 },
  { name: "POST 1 KB", method: "POST", path: "/upload", bodyBytes: 1024 },
  { name: "PUT 1 MB", method: "PUT", path: "/upload", bodyBytes: MB },
  { name: "PUT 50 MB", method: "PUT", path: "/upload", bodyBytes: 50 * MB },
  { name: "POST chunked 5 MB", method: "POST", path: "/upload", bodyBytes: 5 * MB, chunked: true },
  { name: "upstream 302 to its own address", method: "GET", path: "/redirect" },
  { name: "Set-Cookie from upstream", method: "GET", path: "/cookie" },
  { name: "Cookie from client", method: "GET", path: "/", headers: { cookie: "a=1; b=2" } },
  { name: "Host without port", method: "GET", path: "/", host: () => "record.test" },
  { name: "same-site Origin on POST", method: "POST", path: "/form", headers: { origin: "https://record.test:PORT" }, bodyBytes: 10 },
  { name: "cross-site Origin on POST", method: "POST", path: "/form", headers: { origin: "https://evil.example" }, bodyBytes: 10 },
  { name: "cross-site Origin on GET", method: "GET", path: "/", headers: { origin: "https://evil.example" } },
  { name: "client X-Forwarded-For / X-Real-IP", method: "GET", path: "/", headers: { "x-forwarded-for": "203.0.113.9", "x-real-ip": "203.0.113.9", forwarded: "for=203.0.113.9" } },
  { name: "unknown Host", method: "GET", path: "/", host: (port) => `other.test:${port}` },
];

describe("nginx (exported config) and the gateway, same upstream, same matrix", () => {
  const results: Array<{ name: string; same: boolean; differences: string[]; gatewayMs: number; nginxMs: number }> = [];
  after(() => {
    // The README's table is made from this (run with NGINX_EQUIVALENCE_REPORT=1).
    if (process.env.NGINX_EQUIVALENCE_REPORT === "1") console.log(JSON.stringify(results, null, 2));
  });

  for (const c of MATRIX) {
    it(c.name, async () => {
      const withPort = (proxy: Proxy): Case => ({ ...c, headers: Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => [k, v.replace("PORT", String(portOf(proxy)))])) });
      const viaGateway = await observe("gateway", withPort("gateway"));
      const viaNginx = await observe("nginx", withPort("nginx"));
      const differences = diff(viaGateway, viaNginx);
      if (process.env.NGINX_EQUIVALENCE_REPORT === "1") console.log(JSON.stringify({ name: c.name, viaGateway, viaNginx }));
      results.push({ name: c.name, same: differences.length === 0, differences, gatewayMs: Math.round(viaGateway.ms), nginxMs: Math.round(viaNginx.ms) });
      assert.deepEqual(differences.map((d) => d.slice(0, d.indexOf(": gateway"))), DELIBERATE[c.name] ?? [], `${c.name}: gateway ${JSON.stringify(viaGateway, null, 1)}\nnginx ${JSON.stringify(viaNginx, null, 1)}`);
    });
  }
});

/** "where: gateway X, nginx Y" for every leaf that differs. */
function diff(a: unknown, b: unknown, where = ""): string[] {
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], where ? `${where}.${k}` : k)).filter((d) => !d.startsWith("ms:"));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${where}: gateway ${JSON.stringify(a)}, nginx ${JSON.stringify(b)}`];
}

/**
 * Fields that differ on purpose (README.md's table); anything else is a bug in the export or the
 * gateway. Refusals: the gateway answers its own short page naming the fix, not cached; nginx its stock page.
 */
const REFUSAL_PAGE = ["client.body", "client.headers.cache-control", "client.headers.content-type"];
const DELIBERATE: Readonly<Record<string, readonly string[]>> = {
  "cross-site Origin on POST": REFUSAL_PAGE,
  "unknown Host": REFUSAL_PAGE,
};

describe("WebSocket through both", () => {
  for (const proxy of ["gateway", "nginx"] as const) {
    it(`${proxy}: upgrade, messages both ways, cross-site Origin refused`, async () => {
      const port = portOf(proxy);
      const url = `wss://record.test:${port}/ws/echo?x=1`;
      const ws = new WebSocket(url, { ca: bed.ca.certPem, lookup: loopbackLookup, headers: { origin: `https://record.test:${port}` } });
      const received: string[] = [];
      ws.on("message", (m) => received.push(m.toString()));
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      ws.send("ping 1");
      ws.send("x".repeat(100_000));
      await waitUntil(() => received.length >= 3);
      assert.equal(received[0], "hello from upstream");
      assert.equal(received[1], "echo:ping 1");
      assert.equal(received[2]?.length, 100_005);
      ws.close();
      const refused = new WebSocket(url, { ca: bed.ca.certPem, lookup: loopbackLookup, headers: { origin: "https://evil.example" } });
      const status = await new Promise<number>((resolve, reject) => {
        refused.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        refused.once("open", () => reject(new Error("a cross-site WebSocket was accepted")));
        refused.once("error", reject);
      });
      assert.equal(status, 403);
    });
  }
});

describe("the real notebook through both", () => {
  for (const proxy of ["gateway", "nginx"] as const) {
    it(`${proxy}: login, new kernel, execute over the kernel WebSocket`, async () => {
      const client = new NotebookClient(`https://notebook.test:${portOf(proxy)}`, bed.ca.certPem, dispatcher);
      await client.login(jupyter.password);
      const kernel = await client.startKernel();
      const channels = await client.openChannels(kernel);
      assert.equal(await channels.execute("6*7"), "42");
      channels.close();
      await assert.rejects(client.openChannels(kernel, "https://evil.example"), /HTTP 403/);
      await client.json("DELETE", `/api/kernels/${kernel}`).catch(() => undefined);
    });
  }
});

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
