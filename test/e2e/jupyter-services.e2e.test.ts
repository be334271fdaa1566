import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PageConfig } from "@jupyterlab/coreutils";
import { ContentsManager, KernelManager, KernelSpecAPI, ServerConnection, SessionManager, TerminalManager, type Kernel, type KernelMessage } from "@jupyterlab/services";
import { Agent, fetch as undiciFetch, Headers, Request, type Dispatcher } from "undici";
import WebSocket from "ws";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter, type JupyterKind } from "../support/jupyter.js";
import { loopbackLookup, NotebookClient } from "../support/notebook-client.js";
import { settleAll } from "../support/processes.js";
import { createTestBed } from "../support/test-ca.js";

/**
 * @jupyterlab/services, the client library of JupyterLab and of VS Code's Jupyter extension, run
 * against real servers (Debian's notebook 6.4, and JupyterLab 4.6 on jupyter_server 2.21) through
 * the gateway and direct: the same steps must give the same results both ways. Authenticated the
 * two ways clients do: a password login (cookie and _xsrf, as the browser does) and a token (as
 * VS Code does: `Authorization: token …` on requests, `?token=` on WebSocket URLs).
 */

const TOKEN = "f3e1c0ffee5ecret70ken4vscode";
const SERVERS: ReadonlyArray<{ kind: JupyterKind; site: string }> = [
  { kind: "notebook-6.4", site: "classic.example.test" },
  { kind: "jupyterlab-4", site: "lab.example.test" },
];
const bed = createTestBed("jupyter-services-", SERVERS.map((s) => s.site));
const jupyters = new Map<JupyterKind, Jupyter>();
let gateway: GatewayProcess;
const dispatcher = new Agent({ connect: { ca: bed.ca.certPem, lookup: loopbackLookup } });

before(async () => {
  await settleAll(SERVERS.map(async ({ kind }) => jupyters.set(kind, await startJupyter(join(bed.dir, kind), undefined, kind, "/", TOKEN))));
  gateway = await startGateway(bed.dir, testConfigYaml(
    SERVERS.map(({ kind, site }) => ({ host: site, upstreamPort: (jupyters.get(kind) as Jupyter).port, certPath: bed.leaf.certPath, keyPath: bed.leaf.keyPath })),
    { extraYaml: "logs: { access: ./access.log }\n" },
  ));
});

after(async () => {
  await gateway?.stop();
  await Promise.all([...jupyters.values()].map((j) => j.stop()));
  await dispatcher.close();
  rmSync(bed.dir, { recursive: true, force: true });
});

type Auth = "token" | "password";

/** Credentials the library does not handle in Node by itself: a password login's cookies and its _xsrf. */
interface Session {
  readonly cookie: string;
  readonly xsrf: string;
}

async function passwordSession(baseUrl: string, password: string): Promise<Session> {
  const client = new NotebookClient(baseUrl.replace(/\/$/, ""), bed.ca.certPem, dispatcher);
  await client.login(password);
  const cookie = client.cookieHeader();
  const xsrf = /(?:^|; )_xsrf=([^;]+)/.exec(cookie)?.[1];
  assert.ok(xsrf, `no _xsrf cookie after logging in at ${baseUrl}: ${cookie}`);
  return { cookie, xsrf };
}

/** The library's settings for one server: undici's fetch trusting the test CA, and ws for WebSockets. */
function settingsFor(baseUrl: string, auth: Auth, session: Session | null): ServerConnection.ISettings {
  const headers = session ? { cookie: session.cookie } : undefined;
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca: bed.ca.certPem, lookup: loopbackLookup, headers });
    }
  }
  const fetchWithSession = (input: RequestInfo, init?: RequestInit): Promise<Response> => {
    const request = new Request(input as string, init as never);
    if (session) {
      request.headers.set("cookie", session.cookie);
      request.headers.set("x-xsrftoken", session.xsrf); // what the browser library sends from document.cookie
    }
    return undiciFetch(request, { dispatcher: dispatcher as Dispatcher }) as unknown as Promise<Response>;
  };
  return ServerConnection.makeSettings({
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, "ws"),
    token: auth === "token" ? TOKEN : "",
    appendToken: auth === "token",
    fetch: fetchWithSession as typeof fetch,
    Request: Request as unknown as typeof globalThis.Request,
    Headers: Headers as unknown as typeof globalThis.Headers,
    WebSocket: TrustingWebSocket as unknown as typeof globalThis.WebSocket,
  });
}

/** Runs `code` and collects its stream output, with the time each piece arrived (ms after the request). */
async function execute(kernel: Kernel.IKernelConnection, code: string): Promise<{ text: string; arrivals: number[]; status: string; error: string | null }> {
  const started = performance.now();
  const future = kernel.requestExecute({ code });
  let text = "";
  const arrivals: number[] = [];
  let error: string | null = null;
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    if (msg.header.msg_type === "stream") {
      text += (msg.content as KernelMessage.IStreamMsg["content"]).text;
      arrivals.push(performance.now() - started);
    }
    if (msg.header.msg_type === "error") error = (msg.content as KernelMessage.IErrorMsg["content"]).ename;
  };
  const reply = await future.done;
  return { text, arrivals, status: reply.content.status, error };
}

/** The steps a client library takes, reduced to what must be the same through the gateway and direct. */
async function librarySteps(baseUrl: string, auth: Auth, password: string): Promise<Record<string, unknown>> {
  const session = auth === "password" ? await passwordSession(baseUrl, password) : null;
  const serverSettings = settingsFor(baseUrl, auth, session);
  const results: Record<string, unknown> = {};
  const specs = await KernelSpecAPI.getSpecs(serverSettings);
  results.kernelspecs = Object.keys(specs?.kernelspecs ?? {}).sort();

  const kernels = new KernelManager({ serverSettings });
  const sessions = new SessionManager({ serverSettings, kernelManager: kernels });
  const contents = new ContentsManager({ serverSettings });
  const terminals = new TerminalManager({ serverSettings });
  try {
    await contents.save("services.ipynb", { type: "notebook", content: { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 } });
    const connection = await sessions.startNew({ path: "services.ipynb", type: "notebook", name: "services.ipynb", kernel: { name: "python3" } });
    const kernel = connection.kernel as Kernel.IKernelConnection;
    results.session = { path: connection.path, kernel: kernel.name };

    results.execute = (await execute(kernel, "print(6*7)")).text;
    // 2 MiB in one message: more would trip Jupyter's own iopub_data_rate_limit (1 MB/s over 3 s), direct too.
    const big = await execute(kernel, "import sys; sys.stdout.write('x' * (2 * 1024 * 1024)); sys.stdout.flush()");
    results.largeOutput = big.text.length;
    const streaming = await execute(kernel, "import time\nfor i in range(10): print(i, flush=True); time.sleep(0.2)");
    // Streamed, not buffered: the first line arrives long before the last.
    results.streaming = { lines: streaming.text.trim().split("\n").length, spreadOver1s: (streaming.arrivals.at(-1) ?? 0) - (streaming.arrivals[0] ?? 0) > 1_000 };

    const sleeping = execute(kernel, "import time; time.sleep(30)");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const interruptedAt = performance.now();
    await kernel.interrupt();
    const interrupted = await sleeping;
    results.interrupt = { status: interrupted.status, error: interrupted.error, within5s: performance.now() - interruptedAt < 5_000 };

    await kernel.restart();
    results.afterRestart = (await execute(kernel, "print('restarted', 'x' in dir())")).text;
    await connection.shutdown();
    connection.dispose();

    // In a browser the page tells the library whether the server has terminals; here the server does.
    PageConfig.setOption("terminalsAvailable", String((await ServerConnection.makeRequest(`${baseUrl}api/terminals`, {}, serverSettings)).ok));
    results.terminal = terminals.isAvailable() ? await echoInTerminal(terminals) : "unavailable";

    // A chunked upload, as the file browser sends files over 1 MB: chunk 1, 2, …, then -1.
    const payload = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) % 251;
    const chunkSize = 1024 * 1024;
    const chunks = Math.ceil(payload.length / chunkSize);
    for (let i = 0; i < chunks; i++) {
      const chunk = i === chunks - 1 ? -1 : i + 1;
      await contents.save("upload.bin", { type: "file", format: "base64", content: payload.subarray(i * chunkSize, (i + 1) * chunkSize).toString("base64"), chunk });
    }
    const uploaded = await contents.get("upload.bin", { content: true, format: "base64" });
    results.chunkedUpload = createHash("sha256").update(Buffer.from(String(uploaded.content).replace(/\s/g, ""), "base64")).digest("hex") === createHash("sha256").update(payload).digest("hex");
    await contents.delete("upload.bin");
    await contents.delete("services.ipynb");
  } finally {
    kernels.dispose();
    sessions.dispose();
    terminals.dispose();
  }
  return results;
}

/** Opens a terminal, runs an echo in it and waits for its output. */
async function echoInTerminal(terminals: TerminalManager): Promise<string> {
  const terminal = await terminals.startNew();
  try {
    return await new Promise<string>((resolve, reject) => {
      let seen = "";
      const timer = setTimeout(() => reject(new Error(`timed out after 15 s waiting for the terminal's echo; it sent: ${JSON.stringify(seen)}`)), 15_000);
      terminal.messageReceived.connect((_sender, msg) => {
        if (msg.type === "stdout") seen += String(msg.content?.[0] ?? "");
        if (/gateway-42/.test(seen)) {
          clearTimeout(timer);
          resolve("gateway-42");
        }
      });
      terminal.send({ type: "stdin", content: ["echo gateway-$((6*7))\r"] });
    });
  } finally {
    await terminal.shutdown();
  }
}

/**
 * Opens a kernel's channels with ws directly, offering `protocols`: the protocol the server chose,
 * or why ws gave up (it refuses a server that chose none of those offered; browsers accept it).
 */
async function negotiatedProtocol(baseUrl: string, kernelId: string, protocols: string[]): Promise<string> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}api/kernels/${kernelId}/channels?session_id=raw&token=${TOKEN}`, protocols, { ca: bed.ca.certPem, lookup: loopbackLookup });
  try {
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return `chose "${ws.protocol}"`;
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  } finally {
    ws.terminate();
  }
}

describe("@jupyterlab/services through the gateway and direct, same results", { timeout: 600_000 }, () => {
  for (const { kind, site } of SERVERS) {
    for (const auth of ["token", "password"] as const) {
      it(`${kind}, ${auth}: kernelspecs, sessions, execute (large and streaming output), interrupt, restart, terminal, chunked upload`, async (t) => {
        const jupyter = jupyters.get(kind) as Jupyter;
        const started = performance.now();
        const direct = await librarySteps(`http://127.0.0.1:${jupyter.port}/`, auth, jupyter.password as string);
        const directMs = performance.now() - started;
        const viaGateway = await librarySteps(`https://${site}:${gateway.httpsPort}/`, auth, jupyter.password as string);
        t.diagnostic(`direct ${(directMs / 1000).toFixed(1)} s, through the gateway ${((performance.now() - started - directMs) / 1000).toFixed(1)} s`);
        assert.deepEqual(viaGateway, direct);
        // And the results are the right ones, not just the same.
        assert.equal(direct.execute, "42\n");
        assert.equal(direct.largeOutput, 2 * 1024 * 1024);
        assert.deepEqual(direct.streaming, { lines: 10, spreadOver1s: true });
        assert.deepEqual(direct.interrupt, { status: "error", error: "KeyboardInterrupt", within5s: true });
        assert.equal(direct.afterRestart, "restarted False\n");
        assert.equal(direct.terminal, "gateway-42");
        assert.equal(direct.chunkedUpload, true);
      });
    }

    it(`${kind}: a kernel WebSocket with and without the v1 subprotocol offered negotiates the same through the gateway`, async () => {
      const jupyter = jupyters.get(kind) as Jupyter;
      const direct = `http://127.0.0.1:${jupyter.port}/`;
      const started = await (await undiciFetch(`${direct}api/kernels`, { method: "POST", headers: { authorization: `token ${TOKEN}` }, body: "{}" })).json() as { id: string };
      try {
        for (const offered of [["v1.kernel.websocket.jupyter.org"], []]) {
          const viaGateway = await negotiatedProtocol(`https://${site}:${gateway.httpsPort}/`, started.id, offered);
          assert.equal(viaGateway, await negotiatedProtocol(direct, started.id, offered), `offered ${JSON.stringify(offered)}`);
          // notebook 6.4 knows no subprotocol: @jupyterlab/services then reconnects without one.
          const expected = offered.length === 0 ? 'chose ""' : kind === "notebook-6.4" ? "refused: Server sent no subprotocol" : 'chose "v1.kernel.websocket.jupyter.org"';
          assert.equal(viaGateway, expected, `offered ${JSON.stringify(offered)}`);
        }
      } finally {
        await undiciFetch(`${direct}api/kernels/${started.id}`, { method: "DELETE", headers: { authorization: `token ${TOKEN}` } });
      }
    });
  }

  it("accepts ?token= on a plain request as the notebook does, and never writes the token to a log", async () => {
    for (const { site } of SERVERS) {
      const res = await new NotebookClient(`https://${site}:${gateway.httpsPort}`, bed.ca.certPem, dispatcher).request("GET", `/api/contents?token=${TOKEN}`);
      await res.body.text();
      assert.equal(res.statusCode, 200, `${site}: ?token= was not accepted`);
    }
    const accessLog = readFileSync(join(bed.dir, "access.log"), "utf8");
    assert.match(accessLog, /token=REDACTED/, "the access log has the token-authenticated requests");
    assert.ok(!accessLog.includes(TOKEN), "the token is in the access log");
    assert.ok(!gateway.process.output().includes(TOKEN), "the token is in the gateway's own log");
  });
});
