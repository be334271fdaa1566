import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { NotebookClient, type KernelChannels } from "../support/notebook-client.js";
import { isProcessRunning } from "../../src/platform/process-status.js";
import { freePort, waitFor } from "../support/processes.js";
import { sessionPids, startSshd, type Sshd } from "../support/sshd.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";

const SITE = "jupyter.example.test";
const OPEN_SITE = "open.example.test";
const ALLOWED_SITE = "allowed.example.test";

function closed(channels: KernelChannels): Promise<number> {
  return new Promise((resolve) => {
    if (channels.ws.readyState === channels.ws.CLOSED) resolve(-1);
    channels.ws.once("close", (code) => resolve(code));
  });
}

describe("the SSH tunnel and the notebook behind it, with a real sshd", { timeout: 300_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let jupyter: Jupyter;
  let open: Jupyter;
  let sshd: Sshd;
  let gateway: GatewayProcess;
  let origin: string;

  before(async () => {
    const bed = createTestBed("gateway-tunnel-", [SITE, OPEN_SITE, ALLOWED_SITE]);
    ({ dir, ca } = bed);
    const { leaf } = bed;
    [jupyter, open, sshd] = await Promise.all([startJupyter(join(dir, "jupyter")), startJupyter(join(dir, "open"), null), startSshd(join(dir, "sshd"))]);
    const localPort = await freePort();
    const tls = `tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }`;
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${localPort}
    ${tls}
    tunnel:
      ssh: ${userInfo().username}@127.0.0.1
      port: ${sshd.port}
      remote: 127.0.0.1:${jupyter.port}
      identity_file: ${sshd.identityFile}
      known_hosts_file: ${sshd.knownHostsFile}
  - host: ${OPEN_SITE}
    upstream: http://127.0.0.1:${open.port}
    ${tls}
  - host: ${ALLOWED_SITE}
    upstream: http://127.0.0.1:${open.port}
    ${tls}
    allow_unprotected_upstream: true
`);
    origin = `https://${SITE}:${gateway.httpsPort}`;
    await waitFor("tunnel.up", () => gateway.events().find((e) => e.event === "tunnel.up"), 15_000);
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([jupyter?.stop(), open?.stop(), sshd?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const tunnelPid = (): number => gateway.events().filter((e) => e.event === "tunnel.up").pop()?.pid as number;

  it("reaches the real notebook through the tunnel: kernel round trip over wss", async () => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    const channels = await client.openChannels(await client.startKernel());
    assert.equal(await channels.execute("1+1"), "2");
    channels.close();
  });

  it("ssh killed and sshd gone: 'tunnel down' page at once, kernel WebSockets close, backoff in the log, recovery when sshd is back", async (t) => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    const kernel = await client.startKernel();
    const channels = await client.openChannels(kernel);
    assert.equal(await channels.execute("k = 7; k"), "7");
    const wsClosed = closed(channels);

    await sshd.stop(); // established sessions live on; new ones are refused
    const killedAt = performance.now();
    process.kill(tunnelPid(), "SIGKILL");
    const closeCode = await wsClosed;
    t.diagnostic(`kernel WebSocket closed ${(performance.now() - killedAt).toFixed(0)} ms after ssh died (code ${closeCode})`);

    const down = await waitFor("the tunnel-down page", async () => {
      const res = await client.request("GET", "/api/kernels");
      const body = await res.body.text();
      return res.statusCode === 502 && /Tunnel down, reconnecting/.test(body) ? body : undefined;
    }, 5_000);
    t.diagnostic(`tunnel-down page ${(performance.now() - killedAt).toFixed(0)} ms after ssh died`);
    assert.match(down, /reconnecting \(attempt \d+, next in \d+ s\)/);
    assert.match(down, new RegExp(`ssh -p ${sshd.port} `));

    const downs = await waitFor("three failed attempts", () => {
      const d = gateway.events().filter((e) => e.event === "tunnel.down");
      return d.length >= 3 ? d : undefined;
    }, 15_000);
    const delays = downs.slice(-3).map((e) => e.next_attempt_ms as number);
    assert.ok((delays[2] ?? 0) > (delays[0] ?? 0), `backoff grows: ${delays.join(", ")} ms`);
    assert.match(String(downs.at(-1)?.reason), /refused|closed|Connection/i);

    await sshd.start();
    const sshdBack = performance.now();
    await waitFor("a request through the rebuilt tunnel", async () => {
      const res = await client.request("GET", "/api/kernels");
      await res.body.text();
      return res.statusCode === 200 ? true : undefined;
    }, 40_000, 50);
    t.diagnostic(`sshd reachable again → first successful request: ${(performance.now() - sshdBack).toFixed(0)} ms (backoff was ${delays.at(-1)} ms)`);
    const again = await client.openChannels(kernel);
    assert.equal(await again.execute("k * 6"), "42", "the kernel kept its state");
    again.close();
  });

  it("a frozen sshd session is detected and the tunnel rebuilt within the keep-alive bound (~20 s)", async (t) => {
    const client = new NotebookClient(origin, ca.certPem);
    await client.login(jupyter.password);
    const before = tunnelPid();
    const sessions = sessionPids(sshd.process.pid);
    assert.ok(sessions.length > 0, "the tunnel's sshd session process");
    const frozenAt = performance.now();
    for (const pid of sessions) process.kill(pid, "SIGSTOP");
    try {
      await waitFor("a new tunnel", () => (tunnelPid() !== before ? true : undefined), 40_000, 100);
      t.diagnostic(`frozen session → new tunnel up: ${(performance.now() - frozenAt).toFixed(0)} ms`);
      assert.ok(!isProcessRunning(before), "the old ssh client is gone");
      const res = await client.request("GET", "/api/kernels");
      await res.body.text();
      assert.equal(res.statusCode, 200);
    } finally {
      for (const pid of sessions) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  });

  it("status shows the tunnel as serve recorded it and the notebook as it answers", async () => {
    const r = await runGateway(["status", "--config", gateway.configPath]);
    assert.equal(r.status, 2, `critical: one site's notebook has no password\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^ {2}CRITICAL: +notebook answers without a password; run jupyter notebook password$/m);
    assert.match(r.stdout, new RegExp(`tunnel: +ssh -L to \\S+@127\\.0\\.0\\.1:${sshd.port} → 127\\.0\\.0\\.1:${jupyter.port}: up since \\S+`));
    assert.match(r.stdout, /upstream: +127\.0\.0\.1:\d+: answers, password required/);
    assert.match(r.stdout, /upstream: +127\.0\.0\.1:\d+: answers WITHOUT a password: refused by the gateway/);
  });

  it("refuses a notebook that answers without a password, unless the site allows it", async () => {
    const res = await new NotebookClient(`https://${OPEN_SITE}:${gateway.httpsPort}`, ca.certPem).request("GET", "/api/kernels");
    assert.equal(res.statusCode, 503);
    const body = await res.body.text();
    assert.match(body, /This notebook has no password/);
    assert.match(body, /jupyter notebook password/);
    const allowed = await new NotebookClient(`https://${ALLOWED_SITE}:${gateway.httpsPort}`, ca.certPem).request("GET", "/api/kernels");
    await allowed.body.text();
    assert.equal(allowed.statusCode, 200);
    assert.ok(gateway.events().some((e) => e.event === "upstream.unprotected"));

    const config = join(dir, "open.yaml");
    writeFileSync(config, `listen: { https: 0, http: false }\nstorage: ./storage-open\nadmin: false\nsites:\n  - host: ${OPEN_SITE}\n    upstream: http://127.0.0.1:${open.port}\n    tls: internal\n`);
    const check = await runGateway(["check", "--config", config]);
    assert.equal(check.status, 1);
    assert.match(check.stdout, /answers its API without a password: exposing it would give anyone a shell on the workstation\. Run jupyter notebook password/);
  });
});
