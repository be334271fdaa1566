import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { CuttableConnection } from "../support/cuttable-connection.js";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { connectH2, h2Answer, h2Request } from "../support/h2-client.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { settleAll, waitFor } from "../support/processes.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";
import { requireTool } from "../support/tools.js";

const run = promisify(execFile);
const SITE = "jupyter.example.test";
/** A name the gateway does not serve (its certificate covers it, so TLS passes and the guard answers). */
const OTHER = "other.example.test";
/** Short, so that a connection Node leaves open after a protocol error is seen closing within the test. */
const CLIENT_IDLE_S = 5;

/** What the equivalence compares: the status, where it redirects, and the gateway's security headers. */
interface Answer {
  readonly status: number;
  readonly location: string | null;
  readonly security: string;
}

const SECURITY_HEADERS = ["strict-transport-security", "x-content-type-options", "referrer-policy", "x-frame-options"];

describe("HTTP/2: the same answers as HTTP/1.1 from the real notebook; h2load; broken frames", { timeout: 300_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter | undefined;
  let gateway: GatewayProcess | undefined;
  let curl: string;
  let tls: string;

  before(async () => {
    curl = requireTool("/usr/bin/curl", "curl");
    const { stdout } = await run(curl, ["-V"]);
    assert.match(stdout, /^Features:.*\bHTTP2\b/m, "this curl has no HTTP/2; install Debian's curl (built with nghttp2)");
    requireTool("/usr/bin/h2load", "nghttp2-client");
    const bed = createTestBed("gateway-http2-", [SITE, OTHER]);
    ({ dir, ca } = bed);
    tls = `tls: { cert: ${bed.leaf.certPath}, key: ${bed.leaf.keyPath} }`;
    await settleAll([(async () => (jupyter = await startJupyter(join(dir, "jupyter"))))()]);
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
logs: { access: ./access.log }
timeouts: { client_idle: ${CLIENT_IDLE_S}s, upstream_idle: 4s }
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${jupyter?.port}
    ${tls}
`);
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.process.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One curl request; `protocol` is curl's --http1.1 or --http2 (which must then be negotiated). */
  async function curlAnswer(protocol: "--http1.1" | "--http2", host: string, path: string, extra: string[] = [], port = gateway?.httpsPort): Promise<Answer & { version: string }> {
    const { stdout } = await run(curl, ["-sS", protocol, "--cacert", ca.certPath, "--resolve", `${host}:${port}:127.0.0.1`, "-o", "/dev/null", "-D", "-", "-w", "\n%{http_version}", ...extra, `https://${host}:${port}${path}`]);
    const lines = stdout.trim().split(/\r?\n/);
    const version = lines.pop() ?? "";
    const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? "")?.[1]), location: headers.get("location") ?? null, security: SECURITY_HEADERS.map((h) => `${h}: ${headers.get(h)}`).join("; "), version };
  }

  it("curl gets the same answers over HTTP/2 as over HTTP/1.1: notebook pages, guard refusals, security headers", async () => {
    const cases: Array<{ what: string; host: string; path: string; extra?: string[]; status: number }> = [
      { what: "the login page", host: SITE, path: "/login", status: 200 },
      { what: "the lab, not logged in", host: SITE, path: "/lab", status: 302 },
      { what: "the API, not logged in", host: SITE, path: "/api/status", status: 403 },
      { what: "a name the gateway does not serve", host: OTHER, path: "/", status: 421 },
      { what: "a cross-site POST", host: SITE, path: "/api/contents", extra: ["-X", "POST", "-H", "Origin: https://evil.example"], status: 403 },
    ];
    for (const c of cases) {
      const http1 = await curlAnswer("--http1.1", c.host, c.path, c.extra);
      const http2 = await curlAnswer("--http2", c.host, c.path, c.extra);
      assert.equal(http1.version, "1.1", c.what);
      assert.equal(http2.version, "2", `${c.what}: HTTP/2 was not negotiated`);
      assert.equal(http1.status, c.status, `${c.what} over HTTP/1.1`);
      assert.deepEqual({ ...http2, version: "" }, { ...http1, version: "" }, `${c.what}: HTTP/2 and HTTP/1.1 differ`);
      assert.match(http2.security, /strict-transport-security: max-age=\d+; x-content-type-options: nosniff/, c.what);
    }
  });

  it("logs in over HTTP/2 (login form, cookies) and reaches the API, as over HTTP/1.1", async () => {
    for (const protocol of ["--http1.1", "--http2"] as const) {
      const jar = join(dir, `cookies${protocol}`);
      const port = gateway?.httpsPort;
      const common = ["-sS", protocol, "--cacert", ca.certPath, "--resolve", `${SITE}:${port}:127.0.0.1`, "-b", jar, "-c", jar];
      await run(curl, [...common, "-o", "/dev/null", `https://${SITE}:${port}/login`]);
      const xsrf = /\t_xsrf\t(\S+)/.exec(readFileSync(jar, "utf8"))?.[1];
      assert.ok(xsrf, `no _xsrf cookie over ${protocol}`);
      const login = await curlAnswer(protocol, SITE, "/login", ["-b", jar, "-c", jar, "--data-urlencode", `password=${jupyter?.password}`, "--data-urlencode", `_xsrf=${xsrf}`]);
      assert.equal(login.status, 302, `login over ${protocol}`);
      const api = await curlAnswer(protocol, SITE, "/api/kernels", ["-b", jar]);
      assert.equal(api.status, 200, `the API after login over ${protocol}`);
    }
    const lines = readFileSync(join(dir, "access.log"), "utf8").split("\n");
    assert.ok(lines.some((l) => l.includes('"POST /login HTTP/2.0" 302')), `no HTTP/2.0 login line in the access log:\n${lines.slice(-6).join("\n")}`);
    assert.ok(lines.some((l) => l.includes('"POST /login HTTP/1.1" 302')), "no HTTP/1.1 login line in the access log");
  });

  it("refuses a request whose Host names another site than its :authority (RFC 9113 §8.3.1)", async () => {
    const session = await connectH2(gateway?.httpsPort ?? 0, SITE, ca.certPem);
    try {
      const answer = await h2Request(session, "/login", { ":authority": `${SITE}:${gateway?.httpsPort}`, host: OTHER });
      assert.equal(answer.status, 400, JSON.stringify(answer));
      assert.match(answer.body, /:authority/);
      assert.equal((await h2Request(session, "/login")).status, 200, "the session serves on");
    } finally {
      session.destroy();
    }
  });

  it("refuses a request whose headers pass 16 KiB, as over HTTP/1.1 (HTTP/2's default list is 64 KiB); the notebook never sees it", async () => {
    const session = await connectH2(gateway?.httpsPort ?? 0, SITE, ca.certPem);
    try {
      await waitFor("the gateway's SETTINGS", () => (session.remoteSettings.initialWindowSize === 1024 * 1024 ? true : undefined), 5_000);
      assert.equal(session.remoteSettings.maxHeaderListSize, 16 * 1024);
      const big = await h2Request(session, "/api/status?big-headers", { "x-filler": "a".repeat(20 * 1024) });
      // Node resets the stream (ENHANCE_YOUR_CALM) before any request event: no 431 over HTTP/2.
      assert.equal(big.status, 0, `answered (the notebook's API answers 403 when not logged in): ${JSON.stringify(big)}`);
      assert.match(big.error ?? "", /ENHANCE_YOUR_CALM/);
      assert.doesNotMatch(readFileSync(join(dir, "access.log"), "utf8"), /big-headers\S* HTTP\/2\.0" 403/);
    } finally {
      session.destroy();
    }
  });

  it("answers an HTTP/2 CONNECT with 400 and logs it like any request", async () => {
    const session = await connectH2(gateway?.httpsPort ?? 0, SITE, ca.certPem);
    try {
      const stream = session.request({ ":method": "CONNECT", ":authority": "example.org:443" }, { endStream: false });
      stream.on("error", () => undefined);
      const answer = await h2Answer(stream);
      assert.equal(answer.status, 400, JSON.stringify(answer));
      await waitFor("the CONNECT in the access log", () => (/"CONNECT [^"]*HTTP\/2\.0" 400/.test(readFileSync(join(dir, "access.log"), "utf8")) ? true : undefined), 5_000);
    } finally {
      session.destroy();
    }
  });

  it("lets a client send 1 MiB of an upload per request and 4 MiB per connection ahead of a WINDOW_UPDATE, not HTTP/2's 64 KiB", async () => {
    const session = await connectH2(gateway?.httpsPort ?? 0, SITE, ca.certPem);
    try {
      await waitFor("the gateway's SETTINGS and WINDOW_UPDATE", () => (session.remoteSettings.initialWindowSize === 1024 * 1024 && (session.state.remoteWindowSize ?? 0) >= 4 * 1024 * 1024 ? true : undefined), 5_000);
    } finally {
      session.destroy();
    }
  });

  it("h2load: a short load over HTTP/2 with no failed or errored request", async () => {
    const port = gateway?.httpsPort;
    // h2load (1.52) has no --resolve and no SNI option: 127.0.0.1 gets the default site's certificate (it checks none), :authority names the site.
    const { stdout } = await run("/usr/bin/h2load", ["-n", "2000", "-c", "4", "-m", "10", "-H", `:authority: ${SITE}:${port}`, `https://127.0.0.1:${port}/static/favicons/favicon.ico`], { maxBuffer: 1 << 20 });
    assert.match(stdout, /Application protocol: h2/, stdout);
    assert.match(stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/, stdout);
    assert.match(stdout, /status codes: 2000 2xx/, stdout);
  });

  it("listen.http2: false offers only HTTP/1.1, and curl --http2 falls back to it", async () => {
    const offDir = join(dir, "http2-off");
    mkdirSync(offDir);
    const off = await startGateway(offDir, `listen: { address: 127.0.0.1, https: 0, http: false, http2: false }
storage: ./storage
admin: false
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${jupyter?.port}
    ${tls}
`);
    try {
      const answer = await curlAnswer("--http2", SITE, "/login", [], off.httpsPort);
      assert.equal(answer.version, "1.1");
      assert.equal(answer.status, 200);
    } finally {
      await off.stop();
    }
  });

  it("on SIGTERM an idle HTTP/2 connection gets GOAWAY at once, so the stop does not wait out timeouts.drain", async () => {
    const drainDir = join(dir, "drain");
    mkdirSync(drainDir);
    const draining = await startGateway(drainDir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
timeouts: { drain: 20s }
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${jupyter?.port}
    ${tls}
`);
    const session = await connectH2(draining.httpsPort, SITE, ca.certPem);
    try {
      assert.equal((await h2Request(session, "/login")).status, 200);
      let goawayCode: number | null = null;
      session.once("goaway", (code: number) => (goawayCode = code));
      const closed = once(session, "close");
      const started = Date.now();
      // stop() kills with SIGKILL after 5 s: a stop under 4 s is the gateway's own.
      await draining.stop();
      assert.ok(Date.now() - started < 4_000, `the stop took ${Date.now() - started} ms: the idle HTTP/2 connection held it`);
      await closed;
      assert.equal(goawayCode, 0, "GOAWAY with NO_ERROR before the close");
    } finally {
      session.destroy();
      await draining.stop();
    }
  });

  it("a malformed frame gets a GOAWAY, and the connection is closed by client_idle at the latest", async () => {
    const connection = await CuttableConnection.open(gateway?.httpsPort ?? 0, SITE, ca.certPem, { alpn: ["h2"] });
    try {
      assert.equal(connection.tls.alpnProtocol, "h2");
      // The client preface, then a SETTINGS frame 5 bytes long (a multiple of 6 is required: FRAME_SIZE_ERROR, RFC 9113 §6.5).
      await connection.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), Buffer.from([0, 0, 5, 0x4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5])]));
      const started = Date.now();
      await connection.closed();
      const frames = connection.received();
      assert.ok(hasGoaway(frames), `no GOAWAY before the close: ${frames.toString("hex").slice(0, 200)}`);
      assert.ok(Date.now() - started < (CLIENT_IDLE_S + 5) * 1000, "the broken connection outlived client_idle");
      const session = await connectH2(gateway?.httpsPort ?? 0, SITE, ca.certPem);
      assert.equal((await h2Request(session, "/login")).status, 200, "the gateway serves on");
      session.destroy();
    } finally {
      connection.destroy();
    }
  });
});

/** Whether `data` (the server's frames) holds a GOAWAY frame (type 0x7). */
function hasGoaway(data: Buffer): boolean {
  for (let at = 0; at + 9 <= data.length; at += 9 + data.readUIntBE(at, 3)) if (data[at + 3] === 0x7) return true;
  return false;
}
