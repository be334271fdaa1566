import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";
import { Agent } from "undici";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { metricSample } from "../support/gateway-metrics.js";
import { exchange, openWebSocket } from "../support/gateway-client.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { loopbackLookup, NotebookClient } from "../support/notebook-client.js";
import { connectionHolder } from "../support/process-resources.js";
import { freePort, settleAll, waitFor } from "../support/processes.js";
import { startMisbehavingUpstream, type MisbehavingUpstream } from "../support/misbehaving-upstream.js";
import { startRecordingUpstream, type RecordingUpstream } from "../support/recording-upstream.js";
import { createTestBed, replaceFile, type TestCa } from "../support/test-ca.js";
import { isProcessRunning } from "../../src/platform/process-status.js";

const SITE = "jupyter.example.test";
const ECHO_SITE = "echo.example.test";
const TUNNEL_SITE = "tunnel.example.test";
const HOLD_SITE = "hold.example.test";

/**
 * One TLS 1.3 connection for `name`, offering `session`. Without one, it resolves once the
 * server's ticket arrived (sent after the handshake); a resumed session gets no new ticket.
 */
function handshake(port: number, name: string, ca: string, session?: Buffer): Promise<{ socket: TLSSocket; reused: boolean; ticket: Buffer | undefined; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername: name, ca, session, minVersion: "TLSv1.3" });
    const done = (ticket?: Buffer): void => {
      clearTimeout(timer);
      resolve({ socket, reused: socket.isSessionReused(), ticket, fingerprint: socket.getPeerX509Certificate()?.fingerprint256 ?? "" });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS handshake with ${name} within 10 s`));
    }, 10_000);
    if (session) socket.once("secureConnect", () => done());
    else socket.once("session", (ticket: Buffer) => done(ticket));
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe("workers: 2 (node:cluster): one primary, two workers sharing the HTTPS port", { timeout: 240_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let certPath: string;
  let keyPath: string;
  let jupyter: Jupyter | undefined;
  let echo: RecordingUpstream | undefined;
  let holding: MisbehavingUpstream | undefined;
  let gateway: GatewayProcess | undefined;
  let workers: number[] = [];
  const currentWorkers = (): number[] => workers.filter((pid) => isProcessRunning(pid));

  before(async () => {
    const bed = createTestBed("gateway-workers-", [SITE, ECHO_SITE, TUNNEL_SITE, HOLD_SITE]);
    ({ dir, ca } = bed);
    ({ certPath, keyPath } = bed.leaf);
    await settleAll([(async () => (jupyter = await startJupyter(join(dir, "jupyter"))))(), (async () => (echo = await startRecordingUpstream()))(), (async () => (holding = await startMisbehavingUpstream()))()]);
    const tls = `tls: { cert: ${certPath}, key: ${keyPath} }`;
    // A tunnel the primary keeps trying: no sshd listens on its port.
    const [sshPort, tunnelPort] = [await freePort(), await freePort()];
    writeFileSync(join(dir, "id_tunnel"), "not a key\n", { mode: 0o600 });
    writeFileSync(join(dir, "known_hosts"), "");
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: 127.0.0.1:0
workers: 2
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${jupyter!.port}
    ${tls}
  - host: ${ECHO_SITE}
    upstream: http://127.0.0.1:${echo!.port}
    ${tls}
  - host: ${TUNNEL_SITE}
    upstream: http://127.0.0.1:${tunnelPort}
    ${tls}
    tunnel: { ssh: gateway@127.0.0.1, port: ${sshPort}, remote: 127.0.0.1:8888, identity_file: ${join(dir, "id_tunnel")}, known_hosts_file: ${join(dir, "known_hosts")} }
  - host: ${HOLD_SITE}
    upstream: http://127.0.0.1:${holding!.port}
    ${tls}
    login_guard: { paths: [/hold] }
`);
    workers = gateway.events().find((e) => e.event === "gateway.ready")?.workers as number[];
  });

  after(async () => {
    await gateway?.stop();
    await jupyter?.stop();
    await echo?.stop();
    await holding?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts two workers beside the primary and names them in the ready line", () => {
    assert.equal(workers.length, 2);
    assert.ok(!workers.includes(gateway!.process.pid));
    assert.equal(gateway!.events().filter((e) => e.event === "gateway.worker_started").length, 2);
  });

  it("only the primary runs the tunnel; every worker's failure page tells that the tunnel is down", async () => {
    await waitFor("the tunnel failing", () => gateway!.events().find((e) => e.event === "tunnel.down"), 15_000);
    const failedOn = (): Set<unknown> => new Set(gateway!.events().filter((e) => e.event === "proxy.upstream_tunnel_down" && e.site === TUNNEL_SITE).map((e) => e.worker));
    for (let i = 0; i < 200 && (i < 4 || failedOn().size < 2); i++) {
      const res = await exchange(gateway!.httpsPort, TUNNEL_SITE, ca.certPem, "/tree");
      assert.equal(res.status, 502);
      assert.match(res.bodyStart, /SSH tunnel to gateway@127\.0\.0\.1 is (reconnecting|connecting)/);
    }
    assert.equal(failedOn().size, 2, "both workers answered with the tunnel's state");
    const sshChildrenOf = (pid: number): string[] => readdirSync("/proc").filter((p) => {
      try {
        return /^\d+$/.test(p) && readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]?.split(" ")[1] === String(pid) && readFileSync(`/proc/${p}/comm`, "utf8").trim() === "ssh";
      } catch {
        return false; // exited meanwhile
      }
    });
    for (const pid of workers) assert.deepEqual(sshChildrenOf(pid), [], `worker ${pid} runs no ssh`);
  });

  it("a session ticket from one connection resumes on later connections, whichever worker accepts them", async (t) => {
    const first = await handshake(gateway!.httpsPort, SITE, ca.certPem);
    first.socket.destroy();
    assert.ok(first.ticket, "the server sent a session ticket");
    // Connect until both workers accepted several (the primary deals connections out in turn, but other tests' leftovers may shift the turn).
    const holders = new Map<number, number>();
    for (let i = 0; i < 300 && (holders.size < 2 || Math.min(...holders.values()) < 3); i++) {
      const next = await handshake(gateway!.httpsPort, SITE, ca.certPem, first.ticket);
      const holder = connectionHolder(workers, next.socket.localPort ?? 0);
      next.socket.destroy();
      assert.ok(next.reused, `connection ${i + 2} did a full handshake (accepted by worker ${holder})`);
      if (holder !== undefined) holders.set(holder, (holders.get(holder) ?? 0) + 1);
    }
    t.diagnostic(`resumed connections per worker: ${JSON.stringify([...holders])}`);
    assert.equal(holders.size, 2, "both workers resumed the ticket");
  });

  it("30 wrong passwords spread over both workers: at most 5 reach the notebook; /metrics sums the workers' counts", async (t) => {
    const origin = `https://${SITE}:${gateway!.httpsPort}`;
    // One connection per attempt, so that the workers take turns accepting them.
    const attacker = new NotebookClient(origin, ca.certPem, new Agent({ pipelining: 0, connect: { ca: ca.certPem, lookup: loopbackLookup } }));
    await (await attacker.request("GET", "/login")).body.text();
    const guess = async (i: number): Promise<number> => {
      const res = await attacker.request("POST", "/login?next=%2Ftree", {
        body: new URLSearchParams({ password: `wrong-${i}`, _xsrf: attacker.cookies.get("_xsrf") ?? "" }).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded", connection: "close" },
      });
      await res.body.text();
      return res.statusCode;
    };
    const refusers = (): Set<unknown> => new Set(gateway!.events().filter((e) => e.event === "guard.login_refused").map((e) => e.worker));
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => guess(i)));
    // Should one worker have refused the whole burst, guess on until the other refused one too.
    for (let i = 30; i < 200 && refusers().size < 2; i++) statuses.push(await guess(i));
    const reached = statuses.filter((s) => s === 401).length;
    // The notebook's own log agrees (its line may come a little after its answer).
    await waitFor("the notebook's log of the attempts", () => ((jupyter!.process.output().match(/401 POST \/login/g) ?? []).length === reached ? true : undefined), 5_000);
    const refusedBy = refusers();
    t.diagnostic(`notebook saw ${reached} of ${statuses.length}; 429 from workers ${[...refusedBy].join(", ")}`);
    assert.ok(reached <= 5, `${reached} guesses reached the notebook`);
    assert.equal(statuses.filter((s) => s === 429).length, statuses.length - reached);
    assert.equal(refusedBy.size, 2, "both workers refused attempts");

    // Each worker counts its own responses (at their close); the primary's /metrics adds them up.
    const refused429 = async (): Promise<number | undefined> => metricSample(await (await fetch(`http://127.0.0.1:${gateway!.adminPort}/metrics`)).text(), "gateway_requests_total", `{site="${SITE}",status="429"}`);
    await waitFor("the summed 429 count", async () => ((await refused429()) === statuses.length - reached ? true : undefined), 5_000);
  });

  it("SIGHUP reaches every worker: each serves the new certificate", async () => {
    const renewed = ca.issue("renewed", [SITE, ECHO_SITE, TUNNEL_SITE, HOLD_SITE]);
    replaceFile(certPath, renewed.certPem);
    replaceFile(keyPath, renewed.keyPem);
    const reloads = gateway!.events().filter((e) => e.event === "gateway.reloaded").length;
    gateway!.process.child.kill("SIGHUP");
    await waitFor("reload", () => gateway!.events().filter((e) => e.event === "gateway.reloaded").length > reloads || undefined);
    const expected = new X509Certificate(renewed.certPem).fingerprint256;
    const holders = new Set<number>();
    for (let i = 0; i < 200 && (i < 10 || holders.size < 2); i++) {
      const fresh = await handshake(gateway!.httpsPort, SITE, ca.certPem);
      const holder = connectionHolder(workers, fresh.socket.localPort ?? 0);
      fresh.socket.destroy();
      assert.equal(fresh.fingerprint, expected);
      if (holder !== undefined) holders.add(holder);
    }
    assert.equal(holders.size, 2);
  });

  it("a worker killed with SIGKILL is replaced within about a second; a WebSocket on the other worker stays open", async (t) => {
    const { ws, opened } = openWebSocket(gateway!.httpsPort, ECHO_SITE, ca.certPem, "/ws");
    const greeting = new Promise<string>((resolve) => ws.once("message", (d) => resolve(d.toString())));
    assert.ok(await opened);
    assert.equal(await greeting, "hello from upstream");
    const localPort = (ws as unknown as { _socket: { localPort: number } })._socket.localPort;
    const holder = connectionHolder(workers, localPort);
    assert.ok(holder !== undefined, "a worker holds the WebSocket");
    const victim = workers.find((pid) => pid !== holder)!;
    const startedBefore = gateway!.events().filter((e) => e.event === "gateway.worker_started").length;
    const killedAt = Date.now();
    process.kill(victim, "SIGKILL");
    const replacement = await waitFor("a new worker", () => gateway!.events().filter((e) => e.event === "gateway.worker_started")[startedBefore], 10_000, 20);
    const replacedMs = Date.now() - killedAt;
    t.diagnostic(`replacement worker ${replacement.pid} serving ${replacedMs} ms after the kill (its own start: ${replacement.ms} ms)`);
    assert.ok(replacedMs < 3_000, `replaced after ${replacedMs} ms`);
    assert.ok(gateway!.events().some((e) => e.event === "gateway.worker_exited" && e.pid === victim && e.signal === "SIGKILL"));
    workers = [holder, replacement.pid as number];

    const echoed = new Promise<string>((resolve) => ws.once("message", (d) => resolve(d.toString())));
    ws.send("still there");
    assert.equal(await echoed, "echo:still there");
    const served = new Set<number>();
    for (let i = 0; i < 200 && !served.has(replacement.pid as number); i++) {
      const fresh = await handshake(gateway!.httpsPort, ECHO_SITE, ca.certPem);
      served.add(connectionHolder(currentWorkers(), fresh.socket.localPort ?? 0) ?? 0);
      fresh.socket.destroy();
    }
    assert.ok(served.has(replacement.pid as number), "the replacement accepts connections");
    ws.close();
  });

  it("a login attempt in flight on a worker that dies counts as a failed login in the primary", async () => {
    const statePath = join(dir, "storage", "state", "login-failures.json");
    const failures = (): number => {
      try {
        return (JSON.parse(readFileSync(statePath, "utf8")) as Record<string, Record<string, number[]>>)[HOLD_SITE]?.["127.0.0.1"]?.length ?? 0;
      } catch {
        return 0;
      }
    };
    let connected = false;
    const socket = tlsConnect({ host: "127.0.0.1", port: gateway!.httpsPort, servername: HOLD_SITE, ca: ca.certPem }, () => {
      connected = true;
      socket.write(`POST /hold HTTP/1.1\r\nHost: ${HOLD_SITE}:${gateway!.httpsPort}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\npassword=x`);
    });
    const held = new Promise((resolve, reject) => {
      holding!.signals.once("held", resolve);
      // Before the kill, only a failed handshake ends the connection; the kill's reset comes later.
      socket.once("error", (err) => (connected ? undefined : reject(err)));
    });
    await held;
    const holder = connectionHolder(currentWorkers(), socket.localPort ?? 0);
    assert.ok(holder !== undefined, "a worker holds the login attempt");
    const startedBefore = gateway!.events().filter((e) => e.event === "gateway.worker_started").length;
    process.kill(holder, "SIGKILL");
    await waitFor("the attempt counted as a failure", () => (failures() === 1 ? true : undefined), 10_000);
    const replacement = await waitFor("a new worker", () => gateway!.events().filter((e) => e.event === "gateway.worker_started")[startedBefore], 10_000, 20);
    workers = [...currentWorkers(), replacement.pid as number];
    socket.destroy();
  });

  it("a replacement that cannot read the config (its key file gone since the primary read it) reports why, and is forked again once it can", async () => {
    const [first] = currentWorkers();
    const startedBefore = gateway!.events().filter((e) => e.event === "gateway.worker_started").length;
    renameSync(keyPath, `${keyPath}.away`);
    try {
      process.kill(first!, "SIGKILL");
      const failed = await waitFor("the replacement's failure", () => gateway!.events().find((e) => e.event === "gateway.worker_start_failed"), 10_000, 20);
      assert.equal(failed.code, "workers.config_unreadable");
      assert.match(String(failed.error), /file not found/);
    } finally {
      renameSync(`${keyPath}.away`, keyPath);
    }
    const replacement = await waitFor("a new worker", () => gateway!.events().filter((e) => e.event === "gateway.worker_started")[startedBefore], 10_000, 20);
    workers = [...currentWorkers(), replacement.pid as number];
  });

  it("a worker that exits 0 on its own (an operator's kill PID) is replaced, after 1 s", async () => {
    const [first] = currentWorkers();
    const startedBefore = gateway!.events().filter((e) => e.event === "gateway.worker_started").length;
    process.kill(first!, "SIGTERM");
    await waitFor("the worker's exit", () => gateway!.events().find((e) => e.event === "gateway.worker_exited" && e.pid === first && e.code === 0));
    const replacement = await waitFor("a new worker", () => gateway!.events().filter((e) => e.event === "gateway.worker_started")[startedBefore], 10_000, 20);
    workers = [...currentWorkers(), replacement.pid as number];
  });

  it("SIGTERM drains the workers and the primary: all exit, 0 (a worker signalled with it, as systemd does, is not replaced)", async () => {
    const { ws, outcome } = openWebSocket(gateway!.httpsPort, ECHO_SITE, ca.certPem, "/ws");
    await new Promise((resolve) => ws.once("message", resolve));
    const startedBefore = gateway!.events().filter((e) => e.event === "gateway.worker_started").length;
    const exited = new Promise<number | null>((resolve) => gateway!.process.child.once("exit", (code) => resolve(code)));
    // systemd signals every process of the unit: a worker may drain and exit before the primary stops.
    process.kill(currentWorkers()[0]!, "SIGTERM");
    gateway!.process.child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.ok((await outcome).opened);
    await waitFor("workers gone", () => (currentWorkers().length === 0 ? true : undefined), 5_000);
    assert.ok(gateway!.events().some((e) => e.event === "gateway.stopped"));
    assert.equal(gateway!.events().filter((e) => e.event === "gateway.worker_started").length, startedBefore, "no worker was started during the shutdown");
  });
});

describe("workers: 2 that cannot listen", { timeout: 60_000 }, () => {
  it("serve exits 1 with the workers' reason, and leaves no worker behind", async () => {
    const { dir, leaf } = createTestBed("gateway-workers-busy-", [SITE]);
    const taken = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      writeFileSync(join(dir, "gateway.yaml"), `listen: { address: 127.0.0.1, https: ${port}, http: false }\nstorage: ./storage\nadmin: false\nworkers: 2\nsites:\n  - host: ${SITE}\n    upstream: http://127.0.0.1:9\n    tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }\n`);
      const run = await runGateway(["serve", "--config", join(dir, "gateway.yaml")]);
      assert.equal(run.status, 1, run.stdout + run.stderr);
      assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`));
      assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
      const started = run.stdout.split("\n").filter((l) => l.includes('"gateway.worker_started"')).map((l) => (JSON.parse(l) as { pid: number }).pid);
      for (const pid of started) await waitFor(`worker ${pid} gone`, () => (isProcessRunning(pid) ? undefined : true), 5_000);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
