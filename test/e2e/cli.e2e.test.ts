import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { servedCertificate } from "../support/tls-probe.js";
import { GATEWAY_MAIN, runGateway, startGateway } from "../support/gateway-process.js";
import { waitFor } from "../support/processes.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

function gateway(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [GATEWAY_MAIN, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function get(port: number, servername: string, ca: string, method = "GET", path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, servername, ca, method, headers: { host: `${servername}:${port}` }, path }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the gateway command", { timeout: 120_000 }, () => {
  let dir: string;
  let upstream: Server;
  let upstreamPort: number;
  let loginsForwarded = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-cli-"));
    upstream = createServer(
      notebookStandIn((req, res) => {
        if (req.method === "POST") loginsForwarded++;
        res.end("hello from upstream"); // a 200 to POST /login: a failed login, as Jupyter's login page again
      }),
    );
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });

  after(() => {
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("check reports every config problem with file:line:col and exits 78", () => {
    const path = join(dir, "bad.yaml");
    writeFileSync(path, "listen:\n  htps: 443\nsites:\n  - host: jupyter.example.com\n    upstream: ftp://127.0.0.1\n");
    const r = gateway(["check", "--config", path]);
    assert.equal(r.status, 78);
    assert.match(r.stderr, new RegExp(`${path}:2:3: listen.htps is not a known key; did you mean "https"\\?`));
    assert.match(r.stderr, new RegExp(`${path}:5:15: sites\\[0\\].upstream must be an http:// URL of the notebook \\(got "ftp://127.0.0.1"\\)`));
    assert.match(r.stderr, /2 problem\(s\)/);
  });

  it("check accepts the repository's gateway.yaml, and finds no notebook on 127.0.0.1:8888 here", () => {
    const r = gateway(["check", "--config", new URL("../../../gateway.yaml", import.meta.url).pathname]);
    assert.match(r.stdout, /configuration is valid \(1 site\(s\)\)/);
    assert.match(r.stdout, /warning \S+gateway\.yaml:14:5: localhost: nothing answers at 127\.0\.0\.1:8888 \(ECONNREFUSED\); start the notebook/);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("usage errors exit 2 and list the commands", () => {
    const r = gateway(["frobnicate"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.match(r.stderr, /serve/);
  });

  it("--version prints package.json's version; each command has its own --help; unknown options in the gateway's words", () => {
    const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) assert.deepEqual(gateway([flag]), { status: 0, stdout: `gateway ${version}\n`, stderr: "" });
    const serveHelp = gateway(["serve", "--help"]);
    assert.equal(serveHelp.status, 0);
    assert.match(serveHelp.stdout, /^usage: gateway serve \[options\]\n/);
    assert.match(serveHelp.stdout, /-c, --config FILE/);
    assert.doesNotMatch(serveHelp.stdout, /import-nginx/, "serve's own help, not the list of commands");
    assert.match(gateway(["renew", "-h"]).stdout, /--dry-run/);
    assert.deepEqual(gateway(["serve", "--foo"]), { status: 2, stdout: "", stderr: "gateway serve: unknown option --foo; see gateway serve --help\n" });
    assert.deepEqual(gateway(["renew", "--config"]), { status: 2, stdout: "", stderr: "gateway renew: --config needs a value (FILE); see gateway renew --help\n" });
  });

  it("serves tls: internal, reloads on SIGHUP, keeps serving on a bad reload, drains on SIGTERM", async (t) => {
    const storage = join(dir, "storage");
    const config = (hosts: string) => `
listen: { address: 127.0.0.1, https: 0, http: false }
storage: ${storage}
admin: false
sites:
  - hosts: [${hosts}]
    upstream: http://127.0.0.1:${upstreamPort}
    tls: internal
`;
    const g = await startGateway(dir, config("localhost"));
    t.after(() => g.stop());
    const ca = readFileSync(join(storage, "ca", "root.crt"), "utf8");
    assert.deepEqual(await get(g.httpsPort, "localhost", ca), { status: 200, body: "hello from upstream" });

    writeFileSync(g.configPath, "sites: [");
    g.process.child.kill("SIGHUP");
    const failed = await waitFor("reload_failed event", () => g.events().find((e) => e.event === "gateway.reload_failed"));
    assert.match(String(failed.problems), /gateway\.yaml:\d+:\d+: YAML syntax error/);
    assert.equal((await get(g.httpsPort, "localhost", ca)).status, 200, "the old config keeps serving");

    writeFileSync(g.configPath, config("localhost, second.localhost"));
    g.process.child.kill("SIGHUP");
    await waitFor("reloaded event", () => g.events().find((e) => e.event === "gateway.reloaded"));
    assert.match((await servedCertificate(g.httpsPort, "second.localhost", ca)).subjectAltName ?? "", /DNS:second\.localhost/);
    assert.equal((await get(g.httpsPort, "second.localhost", ca)).status, 200);

    g.process.child.kill("SIGTERM");
    const code = await waitFor("exit", () => g.process.child.exitCode ?? undefined, 15_000);
    assert.equal(code, 0);
    assert.ok(g.events().some((e) => e.event === "gateway.stopped"));
  });

  it("status exits as a Nagios plugin (0 OK, 1 warning, 2 critical) and prints JSON with --json", async () => {
    const config = (port: number) => `listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ./status-storage\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:${port}\n    tls: internal\n`;
    // runGateway, not spawnSync: the stand-in notebook runs in this process and must answer the probe.
    const path = join(dir, "status.yaml");
    writeFileSync(path, config(upstreamPort));
    const none = await runGateway(["status", "--config", path]);
    assert.equal(none.status, 2, none.stdout + none.stderr);
    assert.match(none.stdout, /^ {2}CRITICAL: +no certificate yet/m);
    assert.match(none.stdout, /^status: CRITICAL \(1 problem\)$/m);

    assert.equal((await runGateway(["renew", "--config", path])).status, 0);
    const ok = await runGateway(["status", "--config", path]);
    assert.equal(ok.status, 0, ok.stdout);
    assert.match(ok.stdout, /^ {2}expires: +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ days\)$/m);
    assert.match(ok.stdout, /^ {2}renewal: +renews on \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ (days|hours)\)$/m);
    assert.match(ok.stdout, /^status: OK$/m);

    const json = await runGateway(["status", "--config", path, "--json"]);
    assert.equal(json.status, 0);
    const report = JSON.parse(json.stdout) as { level: string; sites: Array<Record<string, unknown>> };
    assert.equal(report.level, "ok");
    assert.equal(report.sites[0]?.site, "localhost");
    assert.equal(report.sites[0]?.notebook, "protected");
    assert.ok(Date.parse(String(report.sites[0]?.not_after)) > Date.now());
    assert.deepEqual(Object.keys(report.sites[0] ?? {}).filter((k) => !/^[a-z_]+$/.test(k)), []);

    writeFileSync(path, config(1)); // nothing listens on port 1
    const warning = await runGateway(["status", "--config", path, "--json"]);
    assert.equal(warning.status, 1, warning.stdout);
    assert.deepEqual((JSON.parse(warning.stdout) as { sites: Array<{ problems: unknown }> }).sites[0]?.problems, [{ level: "warning", message: "notebook not reachable" }]);
  });

  it("unlock lifts a login lock-out in the running gateway, without a restart or SIGHUP", async (t) => {
    const unlockDir = join(dir, "unlock");
    mkdirSync(unlockDir);
    const g = await startGateway(unlockDir, `listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ./storage\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:${upstreamPort}\n    tls: internal\n    login_guard: { max_failures_per_address: 2 }\n`);
    t.after(() => g.stop());
    const ca = readFileSync(join(unlockDir, "storage", "ca", "root.crt"), "utf8");
    const login = async (): Promise<number> => (await get(g.httpsPort, "localhost", ca, "POST", "/login")).status;
    const lockOut = async (): Promise<void> => {
      const before = loginsForwarded;
      assert.deepEqual([await login(), await login(), await login()], [200, 200, 429]);
      assert.equal(loginsForwarded, before + 2, "the third attempt never reached the notebook");
    };
    const unlocked = (): number => g.events().filter((e) => e.event === "guard.login_unlocked").length;

    await lockOut();
    const one = await runGateway(["unlock", "127.0.0.1", "--config", g.configPath]);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /^unlocked 127\.0\.0\.1: 2 failed login\(s\) in the window no longer count; a running gateway applies it within ~1 s$/m);
    await waitFor("guard.login_unlocked", () => unlocked() === 1 || undefined);
    const forwarded = loginsForwarded;
    assert.equal(await login(), 200);
    assert.equal(loginsForwarded, forwarded + 1, "the next attempt reached the notebook");

    assert.equal(await login(), 200);
    assert.equal(await login(), 429, "two new failures lock it out again");
    assert.equal((await runGateway(["unlock", "--all", "--config", g.configPath])).status, 0);
    await waitFor("guard.login_unlocked for all", () => unlocked() === 2 || undefined);
    assert.equal(await login(), 200);

    assert.equal((await runGateway(["unlock", "--config", g.configPath])).status, 2);
    const notAnAddress = await runGateway(["unlock", "jupyter.example.com", "--config", g.configPath]);
    assert.equal(notAnAddress.status, 2);
    assert.match(notAnAddress.stderr, /"jupyter\.example\.com" is not an IP address; give the client address of the lock-out/);
  });

  it("says how to fix a port that is taken, and exits 1", async () => {
    const r = spawnSync(process.execPath, [GATEWAY_MAIN, "serve", "--config", join(dir, "busy.yaml")], { encoding: "utf8", input: "" });
    assert.equal(r.status, 78, "no config yet");
    writeFileSync(join(dir, "busy.yaml"), `listen: { address: 127.0.0.1, https: ${upstreamPort}, http: false }\nstorage: ./busy\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:1\n    tls: internal\n`);
    const busy = gateway(["serve", "--config", join(dir, "busy.yaml")]);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${upstreamPort}: the port is in use by pid ${process.pid} \\(.*\\); stop the other server or change listen\\.https`));
  });
});
