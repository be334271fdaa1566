import assert from "node:assert/strict";
import { once } from "node:events";
import { constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { rmSync } from "node:fs";
import { connect as connectTls } from "node:tls";
import { after, before, describe, it } from "node:test";
import { CUTS, CuttableConnection, clientFrame, responseStatus, upgradeRequest, type Cut } from "../support/cuttable-connection.js";
import { exchange, openWebSocket, type WebSocketOutcome } from "../support/gateway-client.js";
import { scrapeMetric } from "../support/gateway-metrics.js";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { startMisbehavingUpstream, type MisbehavingUpstream } from "../support/misbehaving-upstream.js";
import { describeFds, newFds, openFdCount, settledFdCount } from "../support/process-resources.js";
import { freePort, waitFor } from "../support/processes.js";
import { isProcessRunning } from "../../src/platform/process-status.js";
import { createTestBed } from "../support/test-ca.js";
import { connectH2, h2Request, h2SessionOver, h2Stream } from "../support/h2-client.js";

const SITE = "fault.example.test";
/** A site whose upstream port has nothing listening. */
const REFUSED_SITE = "refused.example.test";
/** The upstream idle timeout the gateway runs with here: a silent upstream gets its 504 after this. */
const UPSTREAM_IDLE = "2s";
/** How long a case waits for an answer the gateway owes (a 504 after UPSTREAM_IDLE included). */
const ANSWER_WITHIN_MS = 15_000;
/** How long sockets may take to close after a case (a FIN'd client waits out UPSTREAM_IDLE). */
const SETTLE_WITHIN_MS = 8_000;
/** fds a case may leave: one more connection than before (the pool opened a second one, the notebook probe reconnected). */
const FD_TOLERANCE = 1;

/** What a case works with; `gateway` is replaced when a case killed it. */
interface Bed {
  gateway: GatewayProcess;
  readonly upstream: MisbehavingUpstream;
  readonly ca: string;
  /** Registers something to close when the case ends (after the leak checks). */
  readonly defer: (cleanup: () => void) => void;
}

interface FaultCase {
  readonly name: string;
  readonly run: (bed: Bed) => Promise<void>;
}

const host = (bed: Bed): string => `${SITE}:${bed.gateway.httpsPort}`;
const origin = (bed: Bed): string => `https://${SITE}:${bed.gateway.httpsPort}`;

async function connect(bed: Bed, options: { holdHandshake?: boolean } = {}): Promise<CuttableConnection> {
  const connection = await CuttableConnection.open(bed.gateway.httpsPort, SITE, bed.ca, options);
  bed.defer(() => connection.destroy());
  return connection;
}

async function signal(bed: Bed, name: string): Promise<void> {
  await withDeadline(once(bed.upstream.signals, name), ANSWER_WITHIN_MS, `the upstream's "${name}"`);
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a WebSocket through the gateway by hand and waits for the 101. */
async function upgraded(bed: Bed, path: string): Promise<CuttableConnection> {
  const connection = await connect(bed);
  await connection.write(upgradeRequest(path, host(bed), origin(bed)));
  await connection.waitForReceived("the 101 through the gateway", (data) => responseStatus(data) !== undefined);
  assert.equal(responseStatus(connection.received()), 101, connection.received().toString("latin1").slice(0, 300));
  return connection;
}

/** The client cuts in `phase`; the gateway's own checks (alive, serves, no leak) follow every case. */
const CLIENT_PHASES: ReadonlyArray<{ phase: string; reach: (bed: Bed) => Promise<CuttableConnection> }> = [
  {
    phase: "during the TLS handshake",
    // The server's first flight arrived and the client never answers it: the server waits for our Finished.
    reach: (bed) => connect(bed, { holdHandshake: true }),
  },
  {
    phase: "mid request headers",
    reach: async (bed) => {
      const connection = await connect(bed);
      await connection.write(`GET /ok HTTP/1.1\r\nHost: ${host(bed)}\r\nAccept: text/html\r\nX-Half-Wri`);
      await connection.waitUntilPeerRead();
      return connection;
    },
  },
  {
    phase: "mid request body",
    reach: async (bed) => {
      const connection = await connect(bed);
      const started = signal(bed, "body-started");
      await connection.write(`POST /upload-hold HTTP/1.1\r\nHost: ${host(bed)}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
      await connection.write(Buffer.alloc(64 * 1024, "u"));
      await started;
      return connection;
    },
  },
  {
    phase: "waiting for the response",
    reach: async (bed) => {
      const connection = await connect(bed);
      const held = signal(bed, "held");
      await connection.write(`GET /hold HTTP/1.1\r\nHost: ${host(bed)}\r\n\r\n`);
      await held;
      return connection;
    },
  },
  {
    phase: "mid response body",
    reach: async (bed) => {
      const connection = await connect(bed);
      const sent = signal(bed, "body-sent");
      await connection.write(`GET /slow-body HTTP/1.1\r\nHost: ${host(bed)}\r\n\r\n`);
      await sent;
      await connection.waitForReceived("the response head and some body", (data) => responseStatus(data) === 200 && data.length > 16 * 1024);
      return connection;
    },
  },
  {
    phase: "WebSocket mid-stream, client sending",
    reach: async (bed) => {
      const connection = await upgraded(bed, "/ws/echo");
      const echoed = signal(bed, "ws-message");
      await connection.write(clientFrame(Buffer.from("first message")));
      await echoed;
      // A frame that announces 1 MiB; the cut comes after 16 KiB of it reached the gateway.
      await connection.write(clientFrame(Buffer.alloc(16 * 1024, "c"), 1024 * 1024).subarray(0, 16 * 1024));
      await connection.waitUntilPeerRead();
      return connection;
    },
  },
  {
    phase: "WebSocket mid-stream, upstream sending",
    reach: async (bed) => {
      const connection = await upgraded(bed, "/ws/flood");
      await connection.waitForReceived("64 KiB of the upstream's messages", () => connection.receivedBytes() > 64 * 1024);
      return connection;
    },
  },
];

const clientCases: FaultCase[] = CLIENT_PHASES.flatMap(({ phase, reach }) =>
  CUTS.map((cut: Cut) => ({
    name: `client cuts ${phase} (${cut})`,
    run: async (bed: Bed) => {
      const connection = await reach(bed);
      connection.cut(cut);
    },
  })),
);

/** An HTTP/2 session over a connection the case can cut. */
async function h2Connection(bed: Bed): Promise<{ connection: CuttableConnection; session: ClientHttp2Session }> {
  const connection = await CuttableConnection.open(bed.gateway.httpsPort, SITE, bed.ca, { alpn: ["h2"] });
  bed.defer(() => connection.destroy());
  assert.equal(connection.tls.alpnProtocol, "h2", "the gateway did not negotiate HTTP/2");
  const session = await h2SessionOver(connection, SITE, bed.gateway.httpsPort);
  bed.defer(() => session.destroy());
  return { connection, session };
}

/** HTTP/2 phases: the stream opened and then left in each phase; the TCP connection under it is then cut. */
type H2Reach = (bed: Bed, session: ClientHttp2Session) => Promise<ClientHttp2Stream>;
const H2_PHASES: ReadonlyArray<{ phase: string; reach: H2Reach }> = [
  { phase: "waiting for the response", reach: async (bed, session) => {
    const held = signal(bed, "held");
    const stream = h2Stream(session, "/hold");
    await held;
    return stream;
  } },
  { phase: "mid request body", reach: async (bed, session) => {
    const started = signal(bed, "body-started");
    const stream = h2Stream(session, "/upload-hold", { ":method": "POST", "content-length": String(1024 * 1024) }, false);
    stream.write(Buffer.alloc(64 * 1024, "u"));
    await started;
    return stream;
  } },
  { phase: "mid response body", reach: async (bed, session) => {
    const sent = signal(bed, "body-sent");
    const stream = h2Stream(session, "/slow-body");
    let received = 0;
    const enough = new Promise<void>((resolve) => stream.on("data", (chunk: Buffer) => (received += chunk.length) > 16 * 1024 && resolve()));
    await sent;
    await withDeadline(enough, ANSWER_WITHIN_MS, "16 KiB of the response body over HTTP/2");
    return stream;
  } },
];

/** Ends a case's session the way a browser does when done (GOAWAY, then close), so no client connection is left. */
async function closeSession(session: ClientHttp2Session): Promise<void> {
  if (session.closed) return;
  const closed = once(session, "close");
  session.close();
  await withDeadline(closed, ANSWER_WITHIN_MS, "the HTTP/2 session to close");
}

/** A stream reset in `phase`; the same session must then serve another request. */
function h2ResetCase(phase: string, reach: H2Reach): FaultCase {
  return {
    name: `HTTP/2 client resets its stream (RST_STREAM) ${phase}; the session serves on`,
    run: async (bed) => {
      const { session } = await h2Connection(bed);
      (await reach(bed, session)).close(h2.NGHTTP2_CANCEL);
      const next = await h2Request(session, "/ok");
      assert.equal(next.status, 200, JSON.stringify(next));
      await closeSession(session);
    },
  };
}

const h2Cases: FaultCase[] = [
  ...H2_PHASES.flatMap(({ phase, reach }) => [
    ...CUTS.map((cut: Cut) => ({
      name: `HTTP/2 client cuts the connection ${phase} (${cut})`,
      run: async (bed: Bed) => {
        const { connection, session } = await h2Connection(bed);
        await reach(bed, session);
        connection.cut(cut);
      },
    })),
    h2ResetCase(phase, reach),
    {
      name: `HTTP/2 client sends GOAWAY and closes ${phase}`,
      run: async (bed: Bed) => {
        const { session } = await h2Connection(bed);
        await reach(bed, session);
        session.goaway(h2.NGHTTP2_CANCEL);
        session.destroy();
      },
    },
  ]),
  h2ResetCase("right after its HEADERS, before the gateway answered", async (_bed, session) => h2Stream(session, "/ok")),
  {
    // Reset before the gateway wrote a byte of their answers (the relay must still end their
    // upstream requests): else the pool's slots stay taken and every later request gets 503.
    name: "HTTP/2 client opens 4 x 128 streams for 256 KiB answers and resets them all 30 ms later; the notebook's pool is not used up",
    run: async (bed) => {
      for (let round = 0; round < 4; round++) {
        const { session } = await h2Connection(bed);
        const streams = Array.from({ length: 128 }, () => h2Stream(session, "/bytes/262144"));
        for (const stream of streams) stream.on("data", () => undefined);
        await new Promise((resolve) => setTimeout(resolve, 30));
        for (const stream of streams) stream.close(h2.NGHTTP2_CANCEL);
        await closeSession(session);
      }
      const { session } = await h2Connection(bed);
      const next = await h2Request(session, "/ok");
      assert.equal(next.status, 200, JSON.stringify({ ...next, body: next.body.slice(0, 100) }));
      await closeSession(session);
      // The pool kept the connections those requests opened, idle (30 s): closed with the upstream, restarted after the case.
      await bed.upstream.stop();
    },
  },
  {
    name: "HTTP/2 client sends 64 KiB of headers: the stream is refused, the process serves on",
    run: async (bed) => {
      const session = await connectH2(bed.gateway.httpsPort, SITE, bed.ca);
      bed.defer(() => session.destroy());
      const big = await h2Request(session, "/ok", { "x-big": "b".repeat(64 * 1024) });
      assert.ok(big.status === 431 || big.error !== null, `64 KiB of headers were accepted: ${JSON.stringify({ ...big, body: big.body.slice(0, 100) })}`);
      session.destroy();
    },
  },
];

/** A handshake the upstream refuses or never answers gets an HTTP error page, not a hang or a reset. */
async function expectRefusedUpgrade(bed: Bed, site: string, path: string, statuses: readonly number[]): Promise<void> {
  const { ws, outcome } = openWebSocket(bed.gateway.httpsPort, site, bed.ca, path);
  bed.defer(() => ws.terminate());
  const seen = await withDeadline(outcome, ANSWER_WITHIN_MS, "end of the WebSocket handshake");
  assert.ok(seen.refusedStatus !== null && statuses.includes(seen.refusedStatus), `expected HTTP ${statuses.join(" or ")} for the upgrade, saw ${JSON.stringify(seen)}`);
}

/** After the 101 an upstream failure closes the client's WebSocket: no HTTP page inside the stream. */
function assertClosedAbruptly(seen: WebSocketOutcome): void {
  assert.ok(seen.opened, `the WebSocket never opened: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen.errors.filter((e) => e.startsWith("WS_ERR_")), [], `protocol errors on the client (an HTTP page written into the WebSocket?): ${JSON.stringify(seen)}`);
  assert.equal(seen.closeCode, 1006, `expected the socket closed without a close frame (1006): ${JSON.stringify(seen)}`);
}

/** The notebook failed the moment its 101 went out: the WebSocket is closed, or (if the 101 lost the race) the upgrade refused with 502. */
function assertClosedOrRefused(seen: WebSocketOutcome): void {
  if (seen.opened) assertClosedAbruptly(seen);
  else assert.equal(seen.refusedStatus, 502, JSON.stringify(seen));
}

const upstreamCases: FaultCase[] = [
  {
    name: "upstream refuses (port closed): request",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, REFUSED_SITE, bed.ca, "/ok");
      assert.equal(res.status, 502, JSON.stringify(res));
    },
  },
  {
    name: "upstream refuses (port closed): upgrade",
    run: (bed) => expectRefusedUpgrade(bed, REFUSED_SITE, "/ws/echo", [502]),
  },
  {
    name: "upstream accepts and never answers: request gets 504",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/hold", { timeoutMs: ANSWER_WITHIN_MS });
      assert.equal(res.status, 504, JSON.stringify(res));
    },
  },
  {
    name: "upstream accepts and never answers: upgrade gets 504",
    run: (bed) => expectRefusedUpgrade(bed, SITE, "/ws/hold", [504]),
  },
  {
    name: "upstream resets mid response body: client sees it truncated",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/reset-mid-body");
      assert.equal(res.status, 200, JSON.stringify(res));
      assert.ok(!res.complete && res.bodyBytes < 1024 * 1024, `a cut body must not look complete: ${JSON.stringify({ ...res, bodyStart: undefined })}`);
    },
  },
  {
    name: "upstream sends invalid headers: 502",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/invalid-headers");
      assert.equal(res.status, 502, JSON.stringify(res));
    },
  },
  {
    name: "upstream sends 100 KB of headers: 502",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/huge-headers");
      assert.equal(res.status, 502, JSON.stringify(res));
    },
  },
  {
    // Node emits the first response's drain while the second one's write runs inside undici's
    // parser; resuming undici right there failed an undici assertion and froze the download.
    name: "client pipelines a request behind a download it does not read yet: both complete once it reads",
    run: async (bed) => {
      const size = 8 * 1024 * 1024;
      const socket = connectTls({ host: "127.0.0.1", port: bed.gateway.httpsPort, servername: SITE, ca: bed.ca });
      bed.defer(() => socket.destroy());
      await once(socket, "secureConnect");
      socket.pause();
      socket.write(`GET /bytes/${size} HTTP/1.1\r\nHost: ${host(bed)}\r\n\r\nGET /ok HTTP/1.1\r\nHost: ${host(bed)}\r\n\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      let received = 0;
      let tail = "";
      await withDeadline(new Promise<void>((resolve) => {
        socket.on("data", (chunk: Buffer) => {
          received += chunk.length;
          tail = (tail + chunk.toString("latin1")).slice(-200);
          if (received > size && tail.includes("ok\n")) resolve();
        });
        socket.resume();
      }), 15_000, `both responses, ${size} bytes and then "ok"`).catch((err: Error) => {
        throw new Error(`${err.message}; got ${received} bytes, ending ${JSON.stringify(tail.slice(-60))}`);
      });
      socket.destroy();
    },
  },
  {
    name: "upstream sends a 304 with a body: the client gets the 304 without it",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/304-with-body");
      assert.equal(res.status, 304, JSON.stringify(res));
      assert.equal(res.bodyBytes, 0, JSON.stringify(res));
    },
  },
  {
    // undici, the gateway's HTTP client, refuses a 100 it did not ask for (RFC 9110 §15.2 says a
    // client should skip it); Jupyter never sends one: the gateway answers Expect itself and never forwards it.
    name: "upstream sends a 100 Continue nobody asked for: 502 that says the answer broke HTTP, not a retry",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/unsolicited-100");
      assert.equal(res.status, 502, JSON.stringify(res));
      assert.match(res.bodyStart, /not valid HTTP/, JSON.stringify(res));
    },
  },
  {
    name: "upstream sends status 999: 502 (RFC 9110 §15: only 100-599 are HTTP)",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/status-999");
      assert.equal(res.status, 502, JSON.stringify(res));
    },
  },
  {
    name: "upstream answers before reading the request body, then reads it: its answer is relayed",
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/early-answer", { method: "POST", body: Buffer.alloc(4 * 1024 * 1024, "e") });
      assert.equal(res.status, 413, JSON.stringify(res));
    },
  },
  {
    name: "upstream answers before reading the request body, then closes: an answer, not a hang",
    // With the body unread the upstream's kernel resets the connection, which may take its answer with it: 413 or 502.
    run: async (bed) => {
      const res = await exchange(bed.gateway.httpsPort, SITE, bed.ca, "/early-answer-close", { method: "POST", body: Buffer.alloc(4 * 1024 * 1024, "e") });
      assert.ok(res.status === 413 || res.status === 502, JSON.stringify({ ...res, bodyStart: res.bodyStart.slice(0, 200) }));
    },
  },
  {
    name: "upstream resets after its 101 reached the client: WebSocket closed, no HTTP page in the stream",
    run: async (bed) => {
      const { ws, opened, outcome } = openWebSocket(bed.gateway.httpsPort, SITE, bed.ca, "/ws/101-then-hold");
      bed.defer(() => ws.terminate());
      if (!(await withDeadline(opened, ANSWER_WITHIN_MS, "WebSocket open"))) assert.fail(`the WebSocket did not open: ${JSON.stringify(await outcome)}`);
      bed.upstream.releaseHeld("rst");
      assertClosedAbruptly(await withDeadline(outcome, ANSWER_WITHIN_MS, "close of the WebSocket"));
    },
  },
  {
    name: "upstream resets the moment its 101 is written: WebSocket closed, or the upgrade refused with 502",
    run: async (bed) => {
      const { ws, outcome } = openWebSocket(bed.gateway.httpsPort, SITE, bed.ca, "/ws/reset-after-101");
      bed.defer(() => ws.terminate());
      assertClosedOrRefused(await withDeadline(outcome, ANSWER_WITHIN_MS, "end of the WebSocket"));
    },
  },
  {
    name: "upstream stopped after its 101 reached the client: WebSocket closed",
    run: async (bed) => {
      const { ws, opened, outcome } = openWebSocket(bed.gateway.httpsPort, SITE, bed.ca, "/ws/101-then-hold");
      bed.defer(() => ws.terminate());
      if (!(await withDeadline(opened, ANSWER_WITHIN_MS, "WebSocket open"))) assert.fail(`the WebSocket did not open: ${JSON.stringify(await outcome)}`);
      await bed.upstream.stop();
      assertClosedAbruptly(await withDeadline(outcome, ANSWER_WITHIN_MS, "close of the WebSocket"));
    },
  },
  {
    name: "upstream stopped the moment its 101 is written: WebSocket closed, or the upgrade refused with 502",
    run: async (bed) => {
      const stopped = signal(bed, "stopped");
      const { ws, outcome } = openWebSocket(bed.gateway.httpsPort, SITE, bed.ca, "/ws/stop-after-101");
      bed.defer(() => ws.terminate());
      await stopped;
      assertClosedOrRefused(await withDeadline(outcome, ANSWER_WITHIN_MS, "end of the WebSocket"));
    },
  },
  {
    name: "upstream stopped mid-WebSocket: WebSocket closed",
    run: async (bed) => {
      const { ws, opened, outcome } = openWebSocket(bed.gateway.httpsPort, SITE, bed.ca, "/ws/echo");
      bed.defer(() => ws.terminate());
      assert.ok(await withDeadline(opened, ANSWER_WITHIN_MS, "WebSocket open"), "the echo WebSocket did not open");
      const echo = once(ws, "message");
      ws.send("ping");
      assert.equal(String((await withDeadline(echo, ANSWER_WITHIN_MS, "echo"))[0]), "ping");
      await bed.upstream.stop();
      assertClosedAbruptly(await withDeadline(outcome, ANSWER_WITHIN_MS, "close of the WebSocket"));
    },
  },
  {
    name: "upstream refuses an upgrade with a 403 whose body is cut short",
    // The 403's head may already be on its way to the client; a 502 is as good.
    run: (bed) => expectRefusedUpgrade(bed, SITE, "/ws/403-cut", [403, 502]),
  },
];

describe("fault matrix: every phase cut by the client or the upstream; the gateway serves on and leaks nothing", { timeout: 900_000 }, () => {
  let dir: string;
  let yaml: string;
  let bed: Bed;
  let cleanups: Array<() => void> = [];
  /** Deaths found between cases: the case before it passed its own checks, then the process died. */
  const lateDeaths: string[] = [];

  const restartGateway = async (): Promise<void> => {
    await bed.gateway.stop();
    bed.gateway = await startGateway(dir, yaml);
  };

  const closeCaseClients = (): void => {
    for (const cleanup of cleanups) cleanup();
    cleanups = [];
  };

  const isAlive = (): boolean => bed.gateway.process.child.exitCode === null && isProcessRunning(bed.gateway.process.pid);

  before(async () => {
    const testBed = createTestBed("fault-matrix-", [SITE, REFUSED_SITE]);
    dir = testBed.dir;
    const upstream = await startMisbehavingUpstream();
    const refusedPort = await freePort();
    yaml = testConfigYaml([
      { host: SITE, upstreamPort: upstream.port, certPath: testBed.leaf.certPath, keyPath: testBed.leaf.keyPath },
      { host: REFUSED_SITE, upstreamPort: refusedPort, certPath: testBed.leaf.certPath, keyPath: testBed.leaf.keyPath },
    ], { admin: true, extraYaml: `timeouts: { upstream_idle: ${UPSTREAM_IDLE} }\n` });
    bed = { gateway: await startGateway(dir, yaml), upstream, ca: testBed.ca.certPem, defer: (cleanup) => cleanups.push(cleanup) };
  });

  after(async () => {
    for (const cleanup of cleanups) cleanup();
    await bed?.gateway.stop();
    await bed?.upstream.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let previous = "start";
  for (const faultCase of [...clientCases, ...h2Cases, ...upstreamCases]) {
    it(faultCase.name, async () => {
      if (!isAlive()) {
        lateDeaths.push(`after "${previous}": ${crashSummary(bed.gateway.process.output())}`);
        await restartGateway();
      }
      previous = faultCase.name;
      const gateway = bed.gateway;
      const pid = gateway.process.pid;
      const outputFrom = gateway.process.output().length;
      // The baseline includes what a served request leaves (a kept-alive upstream connection).
      const served = await exchange(gateway.httpsPort, SITE, bed.ca, "/ok");
      assert.equal(served.status, 200, `the gateway does not serve before the case: ${JSON.stringify(served)}`);
      const openBefore = await scrapeMetric(gateway.adminPort as number, "gateway_websockets_open");
      const fdsBefore = await settledFdCount(pid);
      const fdMapBefore = describeFds(pid);
      const problems: string[] = [];
      try {
        try {
          await faultCase.run(bed);
        } catch (err) {
          problems.push(`the case itself: ${(err as Error).message}`);
          // A client that got no answer gives up, as a browser does; what the gateway holds after that is its own.
          closeCaseClients();
        }
        // Cases that stop the upstream get it back on the same port.
        await bed.upstream.start();
        const healthy = await exchange(gateway.httpsPort, SITE, bed.ca, "/ok");
        if (healthy.status !== 200 || healthy.bodyStart !== "ok\n") problems.push(`the next request was not served: ${JSON.stringify(healthy)}`);
        const died = async (): Promise<never> => {
          await waitFor("the dead gateway's exit", () => (gateway.process.child.exitCode !== null ? true : undefined), 5_000).catch(() => undefined);
          problems.unshift(`THE GATEWAY DIED (exit ${gateway.process.child.exitCode}): ${crashSummary(gateway.process.output().slice(outputFrom))}`);
          await restartGateway();
          throw new Error(problems.join("\n"));
        };
        if (!isAlive()) await died();
        let left: string[] = [];
        try {
          await waitFor("nothing left behind by the case", () => ((left = leftBehind(pid, gateway.httpsPort, fdsBefore, fdMapBefore, bed.upstream)).length === 0 ? true : undefined), SETTLE_WITHIN_MS, 100);
        } catch {
          if (isAlive()) problems.push(...left, `new fds: ${newFds(fdMapBefore, describeFds(pid)).join(", ") || "none"}`);
        }
        try {
          await waitFor("gateway_websockets_open back to its level", async () => ((await scrapeMetric(gateway.adminPort as number, "gateway_websockets_open").catch(() => undefined)) === openBefore ? true : undefined), SETTLE_WITHIN_MS, 100);
        } catch {
          problems.push(`gateway_websockets_open ${openBefore} before, ${await scrapeMetric(gateway.adminPort as number, "gateway_websockets_open").catch(() => "unreadable")} after`);
        }
        // A crash a moment after the next request was served still belongs to this case.
        if (!isAlive()) await died();
      } finally {
        closeCaseClients();
        bed.upstream.releaseHeld();
        await bed.upstream.start();
      }
      if (problems.length > 0) throw new Error(problems.join("\n"));
    });
  }

  it("no case killed the gateway after its own checks passed", () => {
    if (!isAlive()) lateDeaths.push(`after "${previous}": ${crashSummary(bed.gateway.process.output())}`);
    assert.deepEqual(lateDeaths, []);
  });
});

/**
 * What a case left in the gateway: more fds than before (beyond the tolerance), client connections
 * still open, sockets whose connection ended but whose fd is still held, and upstream connections
 * the gateway never closed (the upstream holds them until the gateway does).
 */
function leftBehind(pid: number, httpsPort: number, fdsBefore: number, fdMapBefore: Map<string, string>, upstream: MisbehavingUpstream): string[] {
  const problems: string[] = [];
  const count = openFdCount(pid);
  if (count > fdsBefore + FD_TOLERANCE) problems.push(`fds: ${fdsBefore} before the case, ${count} after`);
  const fds = describeFds(pid);
  const clients = [...fds.values()].filter((t) => t.startsWith(`tcp 127.0.0.1:${httpsPort} -> `) && !t.endsWith(" LISTEN"));
  if (clients.length > 0) problems.push(`client connections still open in the gateway: ${clients.join(", ")}`);
  const closedButHeld = newFds(fdMapBefore, fds).filter((t) => /: socket:\[\d+\]$/.test(t));
  if (closedButHeld.length > 0) problems.push(`fds of sockets no longer in the TCP table (closed, fd never released): ${closedButHeld.join(", ")}`);
  if (upstream.heldCount() > 0) problems.push(`the gateway never closed ${upstream.heldCount()} upstream connection(s) that the case opened`);
  return problems;
}

/** The lines that say why a process died: the error, a few stack frames, or the crash event. */
function crashSummary(output: string): string {
  const lines = output.split("\n");
  const at = lines.findIndex((l) => /gateway\.crashed|unhandled|^\w*Error\b|^node:|Error: /.test(l));
  return at < 0 ? `(no error in its output; last: ${lines.slice(-3).join(" | ")})` : lines.slice(at, at + 4).map((l) => l.trim()).join(" | ");
}
