import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { NotebookClient } from "../support/notebook-client.js";
import { waitFor } from "../support/processes.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";

const SITE = "jupyter.example.test";

/**
 * Nothing reaches a notebook that has not been proven password-protected since it last came up.
 * The scenario of the "never down" issue: the notebook is restarted without a password (a typo in
 * its config, a fresh venv); the gateway used to serve it until its 30 s probe came round.
 */
describe("fail closed: a notebook restarted without a password is refused from its first request", { timeout: 120_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter;
  let gateway: GatewayProcess;
  let configFile: string;
  let protectedConfig: string;

  before(async () => {
    let leaf;
    ({ dir, ca, leaf } = createTestBed("gateway-fail-closed-", [SITE]));
    jupyter = await startJupyter(join(dir, "jupyter"));
    configFile = join(dir, "jupyter", "cfg", "jupyter_notebook_config.json");
    protectedConfig = readFileSync(configFile, "utf8");
    gateway = await startGateway(dir, testConfigYaml([{ host: SITE, upstreamPort: jupyter.port, certPath: leaf.certPath, keyPath: leaf.keyPath }]));
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const contents = async (): Promise<{ status: number; body: string }> => {
    const res = await new NotebookClient(`https://${SITE}:${gateway.httpsPort}`, ca.certPem).request("GET", "/api/contents");
    return { status: res.statusCode, body: await res.body.text() };
  };

  /** Restarts the notebook on the same port with `config` (the password hash, or none). */
  const restartNotebook = async (config: string): Promise<void> => {
    await jupyter.stop();
    writeFileSync(configFile, config);
    await jupyter.start();
  };

  it("refuses a notebook restarted without a password while no connection to it was open", async () => {
    // The gateway proved the notebook at start; nothing has been requested since, so no
    // connection stayed open that the restart would have cut: the proof must not carry over.
    await waitFor("the start-up probe", () => gateway.events().find((e) => e.event === "upstream.probed" && e.notebook === "protected"));
    await restartNotebook(JSON.stringify({ NotebookApp: { password: "" } }));
    const res = await contents();
    assert.equal(res.status, 503, `the open notebook was reached: ${res.body.slice(0, 200)}`);
    await restartNotebook(protectedConfig);
    await sleep(1_000); // the open notebook's refusal stands for a second
  });

  it("passes requests to the protected notebook, which asks for its password itself", async () => {
    const res = await contents();
    assert.equal(res.status, 403, res.body);
  });

  it("refuses the very first request after the notebook came back without a password", async () => {
    await restartNotebook(JSON.stringify({ NotebookApp: { password: "" } }));
    const res = await contents();
    assert.equal(res.status, 503, `the open notebook was reached: ${res.body.slice(0, 200)}`);
    assert.match(res.body, /This notebook has no password/);
    assert.ok(gateway.events().some((e) => e.event === "upstream.unprotected"), "logged as upstream.unprotected");
  });

  it("serves it again once it is back with a password", async () => {
    await restartNotebook(protectedConfig);
    // An open notebook's refusal stands for up to a second before it is asked again.
    const res = await waitFor("the notebook's own 403", async () => {
      const answer = await contents();
      return answer.status === 403 ? answer : undefined;
    }, 5_000, 200);
    assert.equal(res.status, 403, res.body);
  });
});
