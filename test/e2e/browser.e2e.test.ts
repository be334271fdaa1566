import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";
import { isProcessRunning } from "../../src/platform/process-status.js";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { NotebookClient } from "../support/notebook-client.js";
import { connectionsOn, settleAll, waitFor } from "../support/processes.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";
import { browserHome, launchBrowser, launchBrowserProcess, type BrowserProcess } from "../support/browser.js";

const SITE = "jupyter.example.test";
/** Ten seconds of output, one line every 50 ms: the browser goes away while it streams. */
const STREAMING_CELL = "import time\nfor i in range(200): print(i, flush=True); time.sleep(0.05)";

describe("the classic notebook UI in headless Chromium through the gateway", { timeout: 180_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter;
  let gateway: GatewayProcess;
  let home: string;

  before(async () => {
    const bed = createTestBed("gateway-browser-", [SITE]);
    ({ dir, ca } = bed);
    const { leaf } = bed;
    home = browserHome(dir, ca.certPath);
    jupyter = await startJupyter(join(dir, "jupyter"), undefined, "notebook-6.4");
    gateway = await startGateway(dir, testConfigYaml([{ host: SITE, upstreamPort: jupyter.port, certPath: leaf.certPath, keyPath: leaf.keyPath }]));
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it("logs in over HTTP/2, creates a notebook, runs print(6*7) over the kernel WebSocket and shows 42", async (t) => {
    const started = performance.now();
    const context = await launchBrowser(dir, home, [SITE]);
    try {
      const page = await context.newPage();
      const response = await page.goto(`https://${SITE}:${gateway.httpsPort}/`);
      assert.ok(response?.ok(), `first page answered ${response?.status()}`);
      assert.match(page.url(), /\/login\?next=/);
      await page.fill("input#password_input", jupyter.password ?? "");
      await Promise.all([page.waitForURL(/\/tree/), page.click("button#login_submit")]);
      // Chromium speaks HTTP/2 when offered (listen.http2, on by default); the kernel's WebSocket below still upgrades over HTTP/1.1.
      assert.equal(await page.evaluate(() => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).nextHopProtocol), "h2");

      await page.click("#new-buttons button, #new-dropdown-button");
      const [notebook] = await Promise.all([context.waitForEvent("page"), page.click("#kernel-python3 a")]);
      await notebook.waitForURL(/\/notebooks\/Untitled.*\.ipynb/);
      await notebook.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout: 30_000 });
      await notebook.click(".CodeMirror");
      await notebook.keyboard.type("print(6*7)");
      await notebook.keyboard.press("Shift+Enter");
      const output = await notebook.waitForSelector(".output_subarea.output_stream", { timeout: 30_000 });
      assert.equal((await output.innerText()).trim(), "42");
      const screenshot = join(dir, "notebook-42.png");
      await notebook.screenshot({ path: screenshot });
      assert.ok(statSync(screenshot).size > 1000);
      t.diagnostic(`browser flow took ${((performance.now() - started) / 1000).toFixed(1)} s; screenshot ${screenshot}`);
    } finally {
      await context.close();
    }
  });
});

/**
 * Logs in to JupyterLab through the gateway the way a person does, and waits for the launcher.
 * `?reset` starts from the default layout, not the one an earlier round left on the server.
 */
async function logInToLab(page: Page, origin: string, password: string): Promise<void> {
  await page.goto(`${origin}/lab?reset`);
  assert.match(page.url(), /\/login\?next=/);
  await page.fill("input#password_input", password);
  await Promise.all([page.waitForURL(/\/lab/), page.click("button#login_submit")]);
  await page.waitForSelector(".jp-LauncherCard", { timeout: 60_000 });
}

/** Logs in, opens a new notebook from the launcher, runs STREAMING_CELL and waits for 20 lines. */
async function startStreamingInLab(page: Page, origin: string, password: string): Promise<void> {
  await logInToLab(page, origin, password);
  await page.click('.jp-LauncherCard[data-category="Notebook"]');
  await page.waitForSelector('.jp-StatusBar-Widget:has-text("Python 3 (ipykernel) | Idle")', { timeout: 60_000 });
  await page.click(".jp-Cell .cm-content");
  await page.keyboard.insertText(STREAMING_CELL); // no key events, so no auto-indent or bracket closing
  await page.keyboard.press("Shift+Enter");
  await page.waitForFunction(() => (document.querySelector(".jp-OutputArea-output")?.textContent ?? "").split("\n").length > 20, undefined, { timeout: 30_000 });
}

/**
 * A browser that goes away is a TCP reset or a FIN in the middle of the gateway's writes: the
 * sockets' errors must have an owner (GUIDE: every error has an owner). The second round kills the
 * browser this describe shares, so it stays last.
 */
describe("JupyterLab 4 in headless Chromium: the gateway outlives a browser that goes away mid-stream", { timeout: 240_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let leaf: ReturnType<TestCa["issue"]>;
  let jupyter: Jupyter;
  let chrome: BrowserProcess;

  before(async () => {
    ({ dir, ca, leaf } = createTestBed("gateway-browser-faults-", [SITE]));
    const home = browserHome(dir, ca.certPath);
    await settleAll([
      startJupyter(join(dir, "lab"), undefined, "jupyterlab-4").then((j) => (jupyter = j)),
      launchBrowserProcess(home, [SITE]).then((c) => (chrome = c)),
    ]);
  });

  after(async () => {
    await chrome?.close();
    await jupyter?.stop();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  /** Each round has a gateway of its own, so a crash in one round decides nothing about the next. */
  async function withGateway(round: string, body: (gateway: GatewayProcess, origin: string) => Promise<void>): Promise<void> {
    const gatewayDir = join(dir, round);
    mkdirSync(gatewayDir);
    const gateway = await startGateway(gatewayDir, testConfigYaml([{ host: SITE, upstreamPort: jupyter.port, certPath: leaf.certPath, keyPath: leaf.keyPath }], { extraYaml: "logs: { access: ./access.log }\n" }));
    try {
      await body(gateway, `https://${SITE}:${gateway.httpsPort}`);
    } finally {
      await gateway.stop();
    }
  }

  /** How many kernel WebSockets the notebook has seen close so far (jupyter_server logs each). */
  const closedKernelSockets = (): number => jupyter.process.output().split("Starting buffering for").length - 1;

  const isRunning = ({ process: { child, pid } }: GatewayProcess): boolean => child.exitCode === null && child.signalCode === null && isProcessRunning(pid);

  function assertGatewayRunning(gateway: GatewayProcess, fault: string): void {
    const { child } = gateway.process;
    assert.ok(isRunning(gateway), `the gateway died after ${fault} (${child.exitCode !== null ? `exit ${child.exitCode}` : child.signalCode ?? "exit status not collected yet"}); its last output:\n${gateway.process.output().slice(-2000)}`);
  }

  /**
   * After `fault` the gateway must still run and serve `next` (a login). The notebook seeing its
   * kernel WebSocket close shows the browser's sockets are going; an error one of them raises in
   * the gateway can come a little later, so a failed `next` is blamed on the gateway if it exits.
   */
  async function assertServesAfter(gateway: GatewayProcess, closedBefore: number, fault: string, next: () => Promise<void>): Promise<void> {
    await waitFor(`the notebook to see its kernel WebSocket close after ${fault}`, () => (closedKernelSockets() > closedBefore ? true : undefined), 15_000);
    try {
      await next();
    } catch (err) {
      for (let i = 0; i < 40 && isRunning(gateway); i++) await sleep(50);
      assertGatewayRunning(gateway, fault);
      throw err;
    }
    assertGatewayRunning(gateway, `${fault} and the next login`);
  }

  /** Once every client is gone, the gateway holds none of their connections (a leak would stay: WebSockets have no idle timer). */
  async function assertNoConnectionLeft(gateway: GatewayProcess, fault: string): Promise<number> {
    const started = performance.now();
    await waitFor(`the gateway to hold no client connection after ${fault}`, () => {
      if (!isRunning(gateway)) return "died"; // closing the last clients is a fault of its own
      const held = connectionsOn(gateway.process.pid, gateway.httpsPort);
      if (held > 0) throw new Error(`it still holds ${held}`);
      return "drained";
    }, 15_000, 100);
    assertGatewayRunning(gateway, fault);
    return performance.now() - started;
  }

  it("survives a tab closed while a cell streams output, and a fresh context logs in next", async (t) => {
    await withGateway("tab-closed", async (gateway, origin) => {
      const started = performance.now();
      const context = await chrome.newContext();
      const page = await context.newPage();
      await startStreamingInLab(page, origin, jupyter.password as string);
      assert.ok(connectionsOn(gateway.process.pid, gateway.httpsPort) > 0, "the browser's connections are seen where the leak check looks");
      const closedBefore = closedKernelSockets();
      await page.close();
      await assertServesAfter(gateway, closedBefore, "the tab was closed mid-stream", async () => {
        const next = await chrome.newContext();
        await logInToLab(await next.newPage(), origin, jupyter.password as string);
        await next.close();
      });
      await context.close();
      const drainMs = await assertNoConnectionLeft(gateway, "the tab closed and both contexts closed");
      t.diagnostic(`no client connection left ${drainMs.toFixed(0)} ms after the contexts closed`);
      // The access log as the browser made each exchange: the kernel's WebSocket once it closed, and the page's own Referer.
      const log = readFileSync(join(dir, "tab-closed", "access.log"), "utf8");
      const kernelSockets = [...log.matchAll(/"GET \/api\/kernels\/[0-9a-f-]+\/channels\?session_id=[^ ]+ HTTP\/1\.1" 101 (\d+) "[^"]*" "[^"]*" ws_received=(\d+) ws_seconds=([\d.]+)$/gm)];
      assert.ok(kernelSockets.length > 0, `no kernel WebSocket line in the access log:\n${log.slice(-3000)}`);
      // The socket that carried the streaming cell: its output went out, the execute request came in, it lasted seconds.
      const streamed = kernelSockets.find((m) => Number(m[1]) > 10_000 && Number(m[2]) > 100 && Number(m[3]) > 1);
      assert.ok(streamed, `no kernel WebSocket line for the streaming cell: ${kernelSockets.map((m) => m[0]).join("\n")}`);
      assert.match(log, new RegExp(`" 200 \\d+ "${origin.replaceAll(".", "\\.")}/lab[^"]*" "[^"]*HeadlessChrome`), "requests from /lab carry the browser's Referer, not the one rewritten for the notebook");
      assert.doesNotMatch(log, /"http:\/\/127\.0\.0\.1:\d+\//, "no Referer rewritten for the notebook");
      t.diagnostic(`round took ${((performance.now() - started) / 1000).toFixed(1)} s`);
    });
  });

  it("survives Chromium killed (SIGKILL) while a cell streams output, and serves the next login over HTTPS", async (t) => {
    await withGateway("browser-killed", async (gateway, origin) => {
      const started = performance.now();
      const page = await (await chrome.newContext()).newPage();
      await startStreamingInLab(page, origin, jupyter.password as string);
      assert.ok(connectionsOn(gateway.process.pid, gateway.httpsPort) > 0, "the browser's connections are seen where the leak check looks");
      const closedBefore = closedKernelSockets();
      await chrome.kill();
      await assertServesAfter(gateway, closedBefore, `Chromium (PID ${chrome.pid}) was killed mid-stream`, async () => {
        const client = new NotebookClient(origin, ca.certPem);
        await client.login(jupyter.password);
        const contents = await client.request("GET", "/api/contents");
        await contents.body.text();
        assert.equal(contents.statusCode, 200);
        await client.dispatcher.close();
      });
      const drainMs = await assertNoConnectionLeft(gateway, "Chromium was killed and the next login closed");
      t.diagnostic(`no client connection left ${drainMs.toFixed(0)} ms after the next login`);
      t.diagnostic(`round took ${((performance.now() - started) / 1000).toFixed(1)} s`);
    });
  });
});
