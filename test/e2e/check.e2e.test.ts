import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { checkCommand } from "../../src/cli/check-command.js";
import { systemPreflightDeps, type PreflightDeps } from "../../src/preflight/preflight.js";
import { makeCaCertificate, signCertificate } from "../../src/tls/forge-certificates.js";
import { GATEWAY_MAIN, startGateway } from "../support/gateway-process.js";
import { runInProcess } from "../support/in-process-cli.js";
import { trustingAgent } from "../support/notebook-client.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";
import { startPebble, type Pebble } from "../support/pebble.js";
import { freePort, settleAll, waitFor } from "../support/processes.js";
import { startSshd, type Sshd } from "../support/sshd.js";
import { createTestBed, type TestCa } from "../support/test-ca.js";
import { requireTool } from "../support/tools.js";

/** `gateway check` in this process, with DNS answered by challtestsrv (a spawned CLI cannot be pointed at a test DNS server). */
function check(configPath: string, preflight: PreflightDeps): Promise<{ code: number; out: string; ms: number }> {
  return runInProcess((deps) => checkCommand(configPath, deps, preflight));
}

function listenOn(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

/** The finding lines of one level. */
function lines(out: string, level: string): string[] {
  return out.split("\n").filter((l) => l.startsWith(`${level} `));
}

describe("gateway check runs serve's preflight against real components", { timeout: 120_000 }, () => {
  let dir: string;
  let leaf: ReturnType<TestCa["issue"]>;
  let pebble: Pebble | undefined;
  let sshd: Sshd | undefined;
  let notebook: Server;
  let notebookPort: number;
  let plainHttp: Server;
  let plainHttpPort: number;
  let preflight: PreflightDeps;

  before(async () => {
    ({ dir, leaf } = createTestBed("gateway-check-", ["files.example.test"]));
    notebook = createServer(notebookStandIn((_req, res) => res.end("notebook")));
    plainHttp = createServer((_req, res) => res.end("plain"));
    [notebookPort, plainHttpPort] = await Promise.all([listenOn(notebook), listenOn(plainHttp)]);
    await settleAll([
      (async () => (pebble = await startPebble(join(dir, "pebble"), { httpPort: await freePort(), tlsPort: await freePort() })))(),
      (async () => (sshd = await startSshd(join(dir, "sshd"))))(),
    ]);
    const p = pebble as Pebble;
    preflight = { ...systemPreflightDeps(), resolveHost: (host) => p.resolveHost(host), dispatcher: trustingAgent(p.httpsCaPem) };
  });

  after(async () => {
    notebook?.close();
    plainHttp?.close();
    await Promise.all([pebble?.stop(), sshd?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const tunnel = (localPort: number, identityFile: string): string => `
    upstream: http://127.0.0.1:${localPort}
    tunnel:
      ssh: ${userInfo().username}@127.0.0.1
      port: ${sshd?.port}
      remote: 127.0.0.1:${notebookPort}
      identity_file: ${identityFile}
      known_hosts_file: ${sshd?.knownHostsFile}`;

  it("passes a config whose every part works, quickly, warning only of the tunnel that serve will start", async (t) => {
    const [https, http, admin, tunnelPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const path = join(dir, "good.yaml");
    writeFileSync(path, `listen: { address: 127.0.0.1, https: ${https}, http: ${http} }
storage: ./good-storage
admin: 127.0.0.1:${admin}
acme: { directory: "${pebble?.directoryUrl}" }
sites:
  - host: here.example.test
    upstream: http://127.0.0.1:${notebookPort}
    tls: acme
  - host: files.example.test
    upstream: http://127.0.0.1:${notebookPort}
    tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }
  - host: tunnel.example.test
    tls: internal${tunnel(tunnelPort, sshd?.identityFile ?? "")}
`);
    const r = await check(path, preflight);
    t.diagnostic(`gateway check took ${r.ms} ms (DNS, ACME directory, ssh login, 3 notebook probes, 3 ports, concurrently)`);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(lines(r.out, "problem"), []);
    for (const expected of [
      new RegExp(`ok +listen\\.https 127\\.0\\.0\\.1:${https} can be bound`),
      new RegExp(`ok +listen\\.http 127\\.0\\.0\\.1:${http} can be bound`),
      new RegExp(`ok +admin 127\\.0\\.0\\.1:${admin} can be bound`),
      /ok +ACME directory https:\/\/127\.0\.0\.1:\d+\/dir answers/,
      /ok +DNS: here\.example\.test resolves to 127\.0\.0\.1, this server/,
      new RegExp(`ok +tunnel\\.example\\.test: the tunnel's local end 127\\.0\\.0\\.1:${tunnelPort} is free`),
      new RegExp(`ok +ssh \\S+@127\\.0\\.0\\.1 -p ${sshd?.port}: logs in without a prompt`),
      /ok +here\.example\.test: the notebook at 127\.0\.0\.1:\d+ answers and demands a password/,
    ]) assert.match(r.out, expected);
    // The test CA's leaves last a day.
    assert.match(r.out, new RegExp(`warning ${path}:9:5: \\S+site\\.crt expires in 0 day\\(s\\), on \\S+; renew it`));
    assert.equal(lines(r.out, "warning").length, 2, r.out);
    assert.match(lines(r.out, "warning")[1] ?? "", new RegExp(`good\\.yaml:\\d+:\\d+: tunnel\\.example\\.test: the notebook at 127\\.0\\.0\\.1:${tunnelPort} is not reachable now \\(ECONNREFUSED\\); gateway serve starts the tunnel`));
    assert.ok(r.ms < 5_000, `check took ${r.ms} ms`);
  });

  it("reports each mistake at its place in gateway.yaml with its fix, and exits 1", async (t) => {
    const past = new Date(Date.now() - 30 * 86_400_000);
    const pastCa = await makeCaCertificate("check test", past);
    const expired = await signCertificate(pastCa, "expired.example.test", past, 2 * 86_400_000, [{ name: "subjectAltName", altNames: [{ type: 2, value: "expired.example.test" }] }]);
    writeFileSync(join(dir, "expired.crt"), expired.certPem);
    writeFileSync(join(dir, "expired.key"), expired.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, "open.key"), leaf.keyPem, { mode: 0o644 });
    chmodSync(join(dir, "open.key"), 0o644);
    const keygen = requireTool("/usr/bin/ssh-keygen", "openssh-client");
    execFileSync(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "stranger_key")]);
    await pebble?.setAddresses("elsewhere.example.test", ["203.0.113.7"]);
    const [admin, freeTunnelPort, closedPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const path = join(dir, "bad.yaml");
    // Real mistakes: listen.https on a port another server holds (the notebook's), a CA this process
    // does not trust (no NODE_EXTRA_CA_CERTS), DNS pointing elsewhere, an expired certificate, a
    // key every user can read, a certificate for other names, a key the workstation refuses, a
    // tunnel port something else listens on, https:// to a plain-HTTP notebook, and no notebook.
    writeFileSync(path, `listen: { address: 127.0.0.1, https: ${notebookPort}, http: false }
storage: ./bad-storage
admin: 127.0.0.1:${admin}
acme: { directory: "${pebble?.directoryUrl}", challenge: tls-alpn-01 }
sites:
  - host: elsewhere.example.test
    upstream: http://127.0.0.1:${notebookPort}
    tls: acme
  - host: expired.example.test
    upstream: http://127.0.0.1:${notebookPort}
    tls: { cert: ${join(dir, "expired.crt")}, key: ${join(dir, "expired.key")} }
  - host: open-key.example.test
    upstream: http://127.0.0.1:${notebookPort}
    tls: { cert: ${leaf.certPath}, key: ${join(dir, "open.key")} }
  - host: other-name.example.test
    upstream: http://127.0.0.1:${notebookPort}
    tls: { cert: ${leaf.certPath}, key: ${leaf.keyPath} }
  - host: stranger.example.test
    tls: internal${tunnel(freeTunnelPort, join(dir, "stranger_key"))}
  - host: taken.example.test
    tls: internal${tunnel(plainHttpPort, sshd?.identityFile ?? "")}
  - host: plain.example.test
    upstream: https://127.0.0.1:${plainHttpPort}
    tls: internal
  - host: nothing.example.test
    upstream: http://127.0.0.1:${closedPort}
    tls: internal
`);
    const r = await check(path, { ...preflight, dispatcher: undefined });
    
    assert.equal(r.code, 1, r.out);
    const at = (line: number): string => `${path}:${line}:\\d+: `;
    const problems = [
      new RegExp(`${at(1)}cannot listen on 127\\.0\\.0\\.1:${notebookPort}: the port is in use by pid ${process.pid} \\(.*\\); stop the other server or change listen\\.https`),
      new RegExp(`${at(4)}ACME directory https://127\\.0\\.0\\.1:\\d+/dir: its certificate is not trusted here \\([A-Z_]+\\); for a private CA, give its root to the gateway: NODE_EXTRA_CA_CERTS=`),
      new RegExp(`${at(9)}\\S+expired\\.crt expired on \\S+; renew it`),
      new RegExp(`${at(12)}\\S+open\\.key is open to other users \\(mode 644\\), and it holds a secret; run chmod 600`),
      new RegExp(`${at(15)}\\S+site\\.crt does not cover other-name\\.example\\.test \\(it covers files\\.example\\.test\\); browsers refuse those names`),
      new RegExp(`${at(18)}ssh \\S+@127\\.0\\.0\\.1 -p ${sshd?.port} fails: \\S+: Permission denied \\(publickey\\)\\.; the workstation refused the key: add \\S+stranger_key\\.pub to ~/\\.ssh/authorized_keys`),
      new RegExp(`${at(27)}the tunnel's local end 127\\.0\\.0\\.1:${plainHttpPort} is taken by pid ${process.pid} \\(.*\\): serve's ssh would fail "Could not request local forwarding"`),
      new RegExp(`${at(27)}taken\\.example\\.test: 127\\.0\\.0\\.1:${plainHttpPort} answers, but not like a Jupyter notebook server`),
      new RegExp(`${at(36)}plain\\.example\\.test: the notebook at 127\\.0\\.0\\.1:${plainHttpPort} speaks plain HTTP \\(the TLS handshake got ERR_SSL_[A-Z_]+\\): write upstream: http://127\\.0\\.0\\.1:${plainHttpPort}`),
    ];
    t.diagnostic(`gateway check with ${problems.length} problems and two warnings took ${r.ms} ms`);
    for (const expected of problems) assert.ok(lines(r.out, "problem").some((l) => expected.test(l)), `no problem line matches ${expected}\n${r.out}`);
    assert.equal(lines(r.out, "problem").length, problems.length, r.out);
    assert.match(lines(r.out, "warning").join("\n"), new RegExp(`${at(39)}nothing\\.example\\.test: nothing answers at 127\\.0\\.0\\.1:${closedPort} \\(ECONNREFUSED\\); start the notebook`), "no notebook there yet: a warning");
    assert.match(lines(r.out, "warning").join("\n"), new RegExp(`${at(6)}DNS: elsewhere\\.example\\.test resolves to 203\\.0\\.113\\.7, which is not an address of this server\\. Fine if that address forwards ports 80 and 443 here \\(NAT, a load balancer\\)`));
  });

  it("accepts the ports and the tunnel's local end that the running gateway serve of the same config holds, as root and as another user", async () => {
    const [https, admin, tunnelPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const serveDir = join(dir, "serving");
    mkdirSync(serveDir);
    const gateway = await startGateway(serveDir, `listen: { address: 127.0.0.1, https: ${https}, http: false }
storage: ./storage
admin: 127.0.0.1:${admin}
sites:
  - host: tunnel.example.test
    tls: internal${tunnel(tunnelPort, sshd?.identityFile ?? "")}
`);
    try {
      await waitFor("tunnel.up", () => gateway.events().find((e) => e.event === "tunnel.up"), 15_000);
      const r = await check(gateway.configPath, preflight);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`ok +listen\\.https 127\\.0\\.0\\.1:${https} is held by the running gateway serve of this config \\(pid ${gateway.process.pid}\\)`));
      assert.match(r.out, new RegExp(`ok +admin 127\\.0\\.0\\.1:${admin} is held by the running gateway serve of this config`));
      assert.match(r.out, new RegExp(`ok +tunnel\\.example\\.test: the tunnel's local end 127\\.0\\.0\\.1:${tunnelPort} is held by the running gateway serve's ssh \\(pid \\d+\\)`));
      assert.match(r.out, /ok +tunnel\.example\.test: the notebook at .* answers and demands a password/);
      // Without root, /proc hides root's sockets: the admin endpoint answering for the same sites tells.
      chmodSync(dir, 0o755);
      chmodSync(serveDir, 0o755);
      const setpriv = requireTool("/usr/bin/setpriv", "util-linux");
      const hidden = spawnSync(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, GATEWAY_MAIN, "check", "--config", gateway.configPath], { encoding: "utf8" });
      assert.match(hidden.stdout, new RegExp(`ok +listen\\.https 127\\.0\\.0\\.1:${https} is in use, presumably by the running gateway serve of this config \\(its admin endpoint answers for the same sites\\)`), hidden.stdout);
      assert.match(hidden.stdout, new RegExp(`ok +tunnel\\.example\\.test: the tunnel's local end 127\\.0\\.0\\.1:${tunnelPort} is in use, presumably by the running gateway serve's ssh`));
    } finally {
      await gateway.stop();
    }
  });

  it("says how to bind a port below 1024 without root (run as nobody)", () => {
    const setpriv = requireTool("/usr/bin/setpriv", "util-linux");
    const own = join(dir, "unprivileged");
    mkdirSync(own, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const path = join(own, "gateway.yaml");
    writeFileSync(path, `listen: { address: 127.0.0.1, https: 443, http: false }\nstorage: ./storage\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:${notebookPort}\n    tls: internal\n`, { mode: 0o644 });
    const r = spawnSync(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, GATEWAY_MAIN, "check", "--config", path], { encoding: "utf8" });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`problem ${path}:1:\\d+: cannot listen on 127\\.0\\.0\\.1:443: permission denied \\(ports below 1024 need a privilege\\); run as root, grant CAP_NET_BIND_SERVICE \\(setcap .*, or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit\\), or use a port above 1023`));
  });
});
