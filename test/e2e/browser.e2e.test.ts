import assert from "node:assert/strict";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";
import { browserHome, launchBrowser } from "../support/browser.js";

const SITE = "jupyter.example.test";

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
    jupyter = await startJupyter(join(dir, "jupyter"));
    gateway = await startGateway(dir, testConfigYaml([{ host: SITE, upstreamPort: jupyter.port, certPath: leaf.certPath, keyPath: leaf.keyPath }]));
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it("logs in, creates a notebook, runs print(6*7) and shows 42", async (t) => {
    const started = performance.now();
    const context = await launchBrowser(dir, home, [SITE]);
    try {
      const page = await context.newPage();
      const response = await page.goto(`https://${SITE}:${gateway.httpsPort}/`);
      assert.ok(response?.ok(), `first page answered ${response?.status()}`);
      assert.match(page.url(), /\/login\?next=/);
      await page.fill("input#password_input", jupyter.password ?? "");
      await Promise.all([page.waitForURL(/\/tree/), page.click("button#login_submit")]);

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
