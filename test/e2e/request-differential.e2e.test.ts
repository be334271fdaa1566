import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect } from "node:tls";
import { after, before, describe, it } from "node:test";
import type { GatewayProcess } from "../support/gateway-process.js";
import { startGatewayAndExportedNginx } from "../support/nginx.js";
import type { TestProcess } from "../support/processes.js";
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from "../support/recording-upstream.js";
import { createTestBed } from "../support/test-ca.js";

/**
 * The same raw requests, byte for byte over TLS, to the gateway and to real nginx 1.22 (running
 * the gateway's own export of the same gateway.yaml) in front of one recording upstream whose
 * parser accepts anything, so it records whatever a proxy lets through. The gateway must never
 * forward what nginx refuses, nor forward it differently (request count, method, target, body,
 * framing), unless the case names the RFC section that makes the gateway right. Being stricter
 * than nginx is fine and is listed too. Each case also pins the gateway's own answer.
 */

const SITE = "record.test";
const bed = createTestBed("request-differential-", [SITE]);
let upstream: RecordingUpstream;
let gateway: GatewayProcess;
let nginx: TestProcess;
let nginxPort: number;

function gatewayYaml(httpsPort: number): string {
  return [
    `listen: { address: 127.0.0.1, https: ${httpsPort}, http: false }`,
    "storage: ./storage",
    "admin: false",
    "sites:",
    `  - host: ${SITE}`,
    `    upstream: http://127.0.0.1:${upstream.port}`,
    `    tls: { cert: ${bed.leaf.certPath}, key: ${bed.leaf.keyPath} }`,
    "",
  ].join("\n");
}

before(async () => {
  upstream = await startRecordingUpstream({ insecureHTTPParser: true });
  ({ gateway, nginx, nginxPort } = await startGatewayAndExportedNginx(bed.dir, gatewayYaml));
});

after(async () => {
  await nginx?.stop();
  await gateway?.stop();
  await upstream?.stop();
  rmSync(bed.dir, { recursive: true, force: true });
});

type Proxy = "gateway" | "nginx";

/** What one raw request did: the client's first status (or how the connection ended), and what reached the upstream. */
interface Outcome {
  readonly status: number | "closed without an answer" | "no answer in 2 s" | "no status line";
  readonly forwarded: readonly RecordedRequest[];
}

/** The parts of a forwarded request that decide how the notebook reads it. */
function shape(r: RecordedRequest): string {
  const framing = r.headers["transfer-encoding"] !== undefined ? `te=${String(r.headers["transfer-encoding"])}` : r.headers["content-length"] !== undefined ? `cl=${r.headers["content-length"]}` : "no body framing";
  return `${r.method} ${r.url} HTTP/${r.httpVersion} [${framing}] body ${r.bodyLength} B sha256:${r.bodySha256.slice(0, 12)}`;
}

/** Sends `raw` as it is and waits until the proxy closes the connection or goes quiet. */
async function send(proxy: Proxy, raw: string): Promise<Outcome> {
  const port = proxy === "gateway" ? gateway.httpsPort : nginxPort;
  const bytes = Buffer.from(raw.replaceAll("{host}", `${SITE}:${port}`), "latin1");
  const before = upstream.requests.length;
  const answer = await new Promise<{ text: string; ended: "closed" | "quiet" | "timeout" }>((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: SITE, ca: bed.ca.certPem });
    let text = "";
    let quiet: NodeJS.Timeout | undefined;
    const finish = (ended: "closed" | "quiet" | "timeout"): void => {
      clearTimeout(quiet);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ text, ended });
    };
    const deadline = setTimeout(() => finish(text === "" ? "timeout" : "quiet"), 2_000);
    socket.once("secureConnect", () => socket.write(bytes));
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      clearTimeout(quiet);
      // Answers here are small: 300 ms without a byte after one arrived is the end of it (kept-alive).
      quiet = setTimeout(() => finish("quiet"), 300);
    });
    socket.once("close", () => finish("closed"));
    socket.once("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? finish("closed") : reject(err)));
  });
  // The final status: interim answers (100 Continue) come first; 101 is final.
  const status = /^HTTP\/\d\.\d (?!1(?!01)\d\d)(\d{3})/m.exec(answer.text);
  return {
    status: status ? Number(status[1]) : answer.text === "" ? (answer.ended === "timeout" ? "no answer in 2 s" : "closed without an answer") : "no status line",
    forwarded: upstream.requests.slice(before),
  };
}

const CRLF = "\r\n";
const request = (lines: readonly string[], body = ""): string => `${lines.join(CRLF)}${CRLF}${CRLF}${body}`;
const get = (...headers: string[]): string => request(["GET /diff HTTP/1.1", "Host: {host}", ...headers]);
const post = (headers: readonly string[], body: string): string => request(["POST /diff HTTP/1.1", "Host: {host}", ...headers], body);
const upgrade = (target: string, ...headers: string[]): string => request([`GET ${target} HTTP/1.1`, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", ...headers]);

interface Case {
  readonly name: string;
  readonly raw: string;
  /** The gateway's answer: "forwarded" (with the status the upstream gave: 200, or 101) or the status it refuses with. */
  readonly gateway: "forwarded" | number;
  /** Why the gateway may differ from nginx here (forwarding what nginx refuses, or in another shape): an RFC section. */
  readonly differs?: string;
  /** Checks on what the gateway forwarded. */
  readonly check?: (forwarded: readonly RecordedRequest[]) => void;
}

const longValue = (bytes: number): string => "a".repeat(bytes);
const CASES: readonly Case[] = [
  // Well-formed: the baseline both must forward alike.
  { name: "plain GET", raw: get(), gateway: "forwarded" },
  { name: "POST with Content-Length", raw: post(["Content-Length: 5"], "hello"), gateway: "forwarded" },
  { name: "POST chunked, with a chunk extension and a trailer", raw: post(["Transfer-Encoding: chunked"], `5;ext=1${CRLF}hello${CRLF}0${CRLF}X-Trailer: t${CRLF}${CRLF}`), gateway: "forwarded" },
  { name: "Transfer-Encoding: Chunked (coding names are case-insensitive)", raw: post(["Transfer-Encoding: Chunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: "forwarded" },
  { name: "HTTP/1.0 POST with Content-Length", raw: request(["POST /diff HTTP/1.0", "Host: {host}", "Content-Length: 5"], "hello"), gateway: "forwarded" },
  { name: "two pipelined GETs", raw: get() + get(), gateway: "forwarded", check: (f) => assert.equal(f.length, 2) },
  { name: "GET with a body", raw: request(["GET /diff HTTP/1.1", "Host: {host}", "Content-Length: 5"], "hello"), gateway: "forwarded" },
  { name: "Expect: 100-continue", raw: post(["Content-Length: 5", "Expect: 100-continue"], "hello"), gateway: "forwarded" },
  { name: "path starting with //", raw: request(["GET //evil.example/x HTTP/1.1", "Host: {host}"]), gateway: "forwarded" },
  // Absolute-form targets (RFC 9112 §3.2.2).
  { name: "absolute-form naming this site", raw: request(["GET https://{host}/abs?q=1 HTTP/1.1", "Host: {host}"]), gateway: "forwarded", check: (f) => assert.equal(f[0]?.url, "/abs?q=1") },
  { name: "absolute-form naming this site, Host naming another (RFC 9112 §3.2.2: the target's authority wins)", raw: request(["GET https://{host}/abs HTTP/1.1", "Host: other.example"]), gateway: "forwarded", check: (f) => assert.equal(f[0]?.url, "/abs") },
  { name: "absolute-form naming another site, Host naming this one", raw: request(["GET http://evil.example/abs HTTP/1.1", "Host: {host}"]), gateway: 421 },
  { name: "absolute-form with userinfo", raw: request(["GET https://user@{host}/abs HTTP/1.1", "Host: {host}"]), gateway: 400 },
  // Headers the gateway sets cannot be removed or forged by the client.
  {
    name: "Connection naming the gateway's X-Forwarded-* headers",
    raw: get("Connection: keep-alive, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host"),
    gateway: "forwarded",
    check: (f) => {
      assert.equal(f[0]?.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(f[0]?.headers["x-forwarded-proto"], "https");
      assert.match(String(f[0]?.headers["x-forwarded-host"]), /^record\.test:\d+$/);
    },
  },
  { name: "client's own X-Forwarded-For and Forwarded", raw: get("X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9"), gateway: "forwarded", check: (f) => assert.equal(f[0]?.headers["x-forwarded-for"], "127.0.0.1") },
  // Host (RFC 9112 §3.2: MUST answer 400).
  { name: "two Host headers, same value", raw: request(["GET /diff HTTP/1.1", "Host: {host}", "Host: {host}"]), gateway: 400 },
  { name: "two Host headers, different values", raw: request(["GET /diff HTTP/1.1", "Host: {host}", "Host: other.example"]), gateway: 400 },
  { name: "Host with userinfo", raw: request(["GET /diff HTTP/1.1", "Host: user@{host}"]), gateway: 400 },
  { name: "no Host on HTTP/1.1", raw: request(["GET /diff HTTP/1.1"]), gateway: 400 },
  { name: "empty Host", raw: request(["GET /diff HTTP/1.1", "Host:"]), gateway: 400 },
  // Versions.
  { name: "HTTP/2.0 request line", raw: request(["GET /diff HTTP/2.0", "Host: {host}"]), gateway: 505 },
  { name: "HTTP/3.0 request line", raw: request(["GET /diff HTTP/3.0", "Host: {host}"]), gateway: 400 },
  { name: "HTTP/1.2 request line", raw: request(["GET /diff HTTP/1.2", "Host: {host}"]), gateway: 400 },
  { name: "HTTP/0.9 simple request", raw: `GET /diff${CRLF}${CRLF}`, gateway: 505 },
  // Transfer-Encoding and Content-Length: the smuggling families (CL.TE, TE.CL, TE.TE).
  { name: "Transfer-Encoding on HTTP/1.0 (RFC 9112 §6.1)", raw: request(["POST /diff HTTP/1.0", "Host: {host}", "Transfer-Encoding: chunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "CL.TE: Content-Length and Transfer-Encoding", raw: post(["Content-Length: 6", "Transfer-Encoding: chunked"], `0${CRLF}${CRLF}G`), gateway: 400 },
  { name: "TE.CL: Transfer-Encoding and Content-Length", raw: post(["Transfer-Encoding: chunked", "Content-Length: 3"], `8${CRLF}SMUGGLED${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "TE.TE: xchunked", raw: post(["Transfer-Encoding: xchunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 501 },
  { name: "TE.TE: identity, chunked", raw: post(["Transfer-Encoding: identity, chunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 501 },
  { name: "TE.TE: chunked, identity", raw: post(["Transfer-Encoding: chunked, identity"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "TE.TE: two Transfer-Encoding lines", raw: post(["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "TE.TE: space before the colon", raw: post(["Transfer-Encoding : chunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "TE.TE: tab before the value (OWS)", raw: post(["Transfer-Encoding:\tchunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: "forwarded", differs: "RFC 9110 §5.6.3: OWS is spaces and tabs, so this is plain chunked; the gateway re-frames the body it forwards, so no other reading reaches the notebook" },
  { name: "TE.TE: obs-fold value", raw: post(["Transfer-Encoding:", " chunked"], `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "two Content-Length, same value", raw: post(["Content-Length: 5", "Content-Length: 5"], "hello"), gateway: 400 },
  { name: "two Content-Length, different values", raw: post(["Content-Length: 5", "Content-Length: 6"], "hello!"), gateway: 400 },
  { name: "Content-Length: 5, 5", raw: post(["Content-Length: 5, 5"], "hello"), gateway: 400 },
  { name: "Content-Length: +5", raw: post(["Content-Length: +5"], "hello"), gateway: 400 },
  { name: "Content-Length: -1", raw: post(["Content-Length: -1"], "hello"), gateway: 400 },
  { name: "chunk data longer than its size", raw: post(["Transfer-Encoding: chunked"], `5${CRLF}helloEXTRA${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "chunk size overflowing 64 bits", raw: post(["Transfer-Encoding: chunked"], `fffffffffffffffffff${CRLF}hello${CRLF}0${CRLF}${CRLF}`), gateway: 400 },
  { name: "chunk lines ending in bare LF", raw: post(["Transfer-Encoding: chunked"], `5\nhello\n0\n\n`), gateway: 400 },
  // Field syntax.
  { name: "obs-fold in a header", raw: get("X-Folded: a", " b"), gateway: 400 },
  { name: "bare LF line endings", raw: "GET /diff HTTP/1.1\nHost: {host}\n\n", gateway: 400 },
  { name: "NUL in a header value", raw: get("X-Nul: a\u0000b"), gateway: 400 },
  { name: "NUL in the target", raw: request(["GET /diff\u0000 HTTP/1.1", "Host: {host}"]), gateway: 400 },
  { name: "space in the target", raw: request(["GET /a b HTTP/1.1", "Host: {host}"]), gateway: 400 },
  { name: "space in a header name", raw: get("X Y: z"), gateway: 400 },
  { name: "header line without a colon", raw: get("X-No-Colon"), gateway: 400 },
  { name: "lower-case method", raw: request(["get /diff HTTP/1.1", "Host: {host}"]), gateway: 400 },
  { name: "unknown method", raw: request(["BREW /diff HTTP/1.1", "Host: {host}"]), gateway: 400 },
  { name: "asterisk-form OPTIONS *", raw: request(["OPTIONS * HTTP/1.1", "Host: {host}"]), gateway: 400 },
  { name: "CONNECT", raw: request(["CONNECT record.test:443 HTTP/1.1", "Host: {host}"]), gateway: 400 },
  // Sizes.
  { name: "100 header fields", raw: get(...Array.from({ length: 99 }, (_, i) => `X-H${i}: v`)), gateway: "forwarded" },
  { name: "101 header fields", raw: get(...Array.from({ length: 100 }, (_, i) => `X-H${i}: v`)), gateway: 431 },
  { name: "2,000 header fields", raw: get(...Array.from({ length: 1999 }, (_, i) => `X-H${i}: v`)), gateway: 431 },
  { name: "10 KB request line", raw: request([`GET /diff?q=${longValue(10_000)} HTTP/1.1`, "Host: {host}"]), gateway: "forwarded", differs: "RFC 9112 §3: the request-line length limit is the server's choice (at least 8,000 octets RECOMMENDED); nginx's is its 8 KiB buffer, the gateway's the 16 KiB header block (Node's maxHeaderSize)" },
  { name: "20 KB request line", raw: request([`GET /diff?q=${longValue(20_000)} HTTP/1.1`, "Host: {host}"]), gateway: 431 },
  { name: "20 KB header value", raw: get(`X-Long: ${longValue(20_000)}`), gateway: 431 },
  // WebSocket upgrades take the same hygiene step.
  { name: "WebSocket upgrade", raw: upgrade("/ws", "Host: {host}"), gateway: "forwarded" },
  { name: "WebSocket upgrade, absolute-form naming another site", raw: upgrade("http://evil.example/ws", "Host: {host}"), gateway: 421 },
  { name: "WebSocket upgrade with two Host headers", raw: upgrade("/ws", "Host: {host}", "Host: other.example"), gateway: 400 },
  { name: "WebSocket upgrade on HTTP/2.0", raw: upgrade("/ws", "Host: {host}").replace("HTTP/1.1", "HTTP/2.0"), gateway: 505 },
  { name: "WebSocket upgrade naming X-Forwarded-For in Connection", raw: upgrade("/ws", "Host: {host}").replace("Connection: Upgrade", "Connection: Upgrade, X-Forwarded-For"), gateway: "forwarded", check: (f) => assert.equal(f[0]?.headers["x-forwarded-for"], "127.0.0.1") },
  { name: "h2c upgrade", raw: get("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"), gateway: 400 },
];

describe("the same raw requests to the gateway and to nginx, in front of one recording upstream", { timeout: 300_000 }, () => {
  const report: string[] = [];
  after(() => {
    if (process.env.DIFFERENTIAL_REPORT === "1") console.log(report.join("\n"));
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const viaGateway = await send("gateway", c.raw);
      const viaNginx = await send("nginx", c.raw);
      const shapes = (o: Outcome): string[] => o.forwarded.map(shape);
      report.push(`${c.name}\n  gateway: ${viaGateway.status}, forwarded ${JSON.stringify(shapes(viaGateway))}\n  nginx:   ${viaNginx.status}, forwarded ${JSON.stringify(shapes(viaNginx))}`);
      const seen = `gateway ${viaGateway.status} ${JSON.stringify(shapes(viaGateway))}; nginx ${viaNginx.status} ${JSON.stringify(shapes(viaNginx))}`;

      if (c.gateway === "forwarded") {
        assert.ok(viaGateway.forwarded.length > 0, `the gateway should forward this: ${seen}`);
        assert.ok(viaGateway.status === 200 || viaGateway.status === 101, `the upstream's answer should reach the client: ${seen}`);
        c.check?.(viaGateway.forwarded);
      } else {
        assert.equal(viaGateway.status, c.gateway, seen);
        assert.equal(viaGateway.forwarded.length, 0, `a refused request must not reach the upstream: ${seen}`);
      }
      const sameShape = JSON.stringify(shapes(viaGateway)) === JSON.stringify(shapes(viaNginx));
      const forwardsMore = viaGateway.forwarded.length > 0 && !sameShape;
      if (c.differs === undefined) {
        assert.ok(!forwardsMore, `the gateway forwards what nginx refuses, or forwards it differently, and no RFC section says why: ${seen}`);
      } else {
        // A listed difference must still be one; when nginx catches up, the entry goes.
        assert.ok(!sameShape || viaGateway.status !== viaNginx.status, `listed as a difference (${c.differs}) but both behave alike: ${seen}`);
      }
    });
  }
});
