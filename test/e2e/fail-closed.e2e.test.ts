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

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** A GET through the gateway without credentials, as anyone on the internet can send. */
async function getThrough(gateway: GatewayProcess, ca: TestCa, site: string, path: string): Promise<Answer> {
  const res = await new NotebookClient(`https://${site}:${gateway.httpsPort}`, ca.certPem).request("GET", path);
  return { status: res.statusCode, body: await res.body.text() };
}

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
    jupyter = await startJupyter(join(dir, "jupyter"), undefined, "notebook-6.4"); // restarted with its config file rewritten
    configFile = join(dir, "jupyter", "cfg", "jupyter_notebook_config.json");
    protectedConfig = readFileSync(configFile, "utf8");
    gateway = await startGateway(dir, testConfigYaml([{ host: SITE, upstreamPort: jupyter.port, certPath: leaf.certPath, keyPath: leaf.keyPath }]));
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const contents = (): Promise<Answer> => getThrough(gateway, ca, SITE, "/api/contents");

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

/**
 * Jupyter served under a base_url answers 404 at /api/kernels: the gateway cannot prove it
 * demands a password there, so it refuses it until the site names the base_url, and then judges
 * it like any other notebook. Before, a password-less one was served to anyone.
 */
describe("fail closed: Jupyter under a base_url is judged at <base_url>api/kernels", { timeout: 120_000 }, () => {
  const PLAIN = "plain.example.test";
  const BASED = "based.example.test";
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter;
  let gateway: GatewayProcess;

  before(async () => {
    let leaf;
    ({ dir, ca, leaf } = createTestBed("gateway-base-url-", [PLAIN, BASED]));
    jupyter = await startJupyter(join(dir, "jupyter"), null, "notebook-6.4", "/jupyter/");
    const tls = `tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }`;
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ./storage\nadmin: false\nsites:\n  - host: ${PLAIN}\n    upstream: http://127.0.0.1:${jupyter.port}\n    ${tls}\n  - host: ${BASED}\n    upstream: http://127.0.0.1:${jupyter.port}\n    base_url: /jupyter/\n    ${tls}\n`);
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (site: string, path: string): Promise<Answer> => getThrough(gateway, ca, site, path);

  it("refuses the open notebook when the site does not name its base_url, saying how to", async () => {
    const res = await get(PLAIN, "/jupyter/api/kernels");
    assert.equal(res.status, 502, `the open notebook was reached: ${res.body.slice(0, 200)}`);
    assert.match(res.body, /base_url: \/jupyter\//);
  });

  it("refuses it as open when the site names its base_url", async () => {
    const res = await get(BASED, "/jupyter/api/kernels");
    assert.equal(res.status, 503, res.body.slice(0, 200));
    assert.match(res.body, /This notebook has no password/);
  });
});

/**
 * jupyter_server 2 (JupyterLab 4, Notebook 7) judged by the same probe: with a password it is
 * served, and started with `--IdentityProvider.token=''` and no password it is refused as open.
 */
describe("fail closed: JupyterLab 4 on jupyter_server 2, with and without a password", { timeout: 180_000 }, () => {
  const PROTECTED = "lab.example.test";
  const OPEN = "open-lab.example.test";
  let dir: string;
  let ca: TestCa;
  let withPassword: Jupyter;
  let open: Jupyter;
  let gateway: GatewayProcess;

  before(async () => {
    let leaf;
    ({ dir, ca, leaf } = createTestBed("gateway-modern-probe-", [PROTECTED, OPEN]));
    [withPassword, open] = await Promise.all([startJupyter(join(dir, "protected"), undefined, "jupyterlab-4"), startJupyter(join(dir, "open"), null, "jupyterlab-4")]);
    gateway = await startGateway(dir, testConfigYaml([
      { host: PROTECTED, upstreamPort: withPassword.port, certPath: leaf.certPath, keyPath: leaf.keyPath },
      { host: OPEN, upstreamPort: open.port, certPath: leaf.certPath, keyPath: leaf.keyPath },
    ]));
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([withPassword?.stop(), open?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes requests to the protected one, which asks for its password itself", async () => {
    const res = await getThrough(gateway, ca, PROTECTED, "/api/contents");
    assert.equal(res.status, 403, res.body.slice(0, 200));
  });

  it("refuses the one without password or token, saying so", async () => {
    const res = await getThrough(gateway, ca, OPEN, "/api/contents");
    assert.equal(res.status, 503, `the open notebook was reached: ${res.body.slice(0, 200)}`);
    assert.match(res.body, /This notebook has no password/);
  });
});
