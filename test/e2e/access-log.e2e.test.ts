import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runGateway, startGateway } from "../support/gateway-process.js";
import { waitFor } from "../support/processes.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

function get(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, servername: "localhost", ca, headers: { host: `localhost:${port}` }, path: "/" }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("logs.access that cannot be written", { timeout: 120_000 }, () => {
  let dir: string;
  let upstream: Server;
  let upstreamPort: number;
  const config = (storage: string, access: string): string =>
    `listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ${storage}\nadmin: false\nlogs: { access: ${access} }\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:${upstreamPort}\n    tls: internal\n`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-access-log-"));
    upstream = createServer(notebookStandIn((_req, res) => res.end("hello")));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });

  after(() => {
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("in a missing folder: check reports it, serve refuses to start with one line and exit 1", async () => {
    const home = join(dir, "missing");
    mkdirSync(home);
    const accessPath = join(home, "no-such-folder", "access.log");
    const configPath = join(home, "gateway.yaml");
    writeFileSync(configPath, config("./storage", accessPath));
    const expected = `logs.access ${accessPath}: the folder ${join(home, "no-such-folder")} does not exist \\(ENOENT\\); create it for the gateway's user \\(mkdir -p ${join(home, "no-such-folder")}\\), or set logs.access: stdout`;

    const check = await runGateway(["check", "--config", configPath]);
    assert.equal(check.status, 1, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`^problem +${expected}$`, "m"));

    const serve = await runGateway(["serve", "--config", configPath]);
    assert.equal(serve.status, 1, serve.stdout + serve.stderr);
    assert.match(serve.stderr, new RegExp(`^gateway: ${expected}: ENOENT[^\n]*\n$`), "one line");
    assert.doesNotMatch(serve.stdout + serve.stderr, /^\s+at /m, "no stack");
  });

  it("on a full disk: the write error is logged once, and the gateway keeps serving", async (t) => {
    const home = join(dir, "full");
    mkdirSync(home);
    const g = await startGateway(home, config("./storage", "/dev/full"));
    t.after(() => g.stop());
    const ca = readFileSync(join(home, "storage", "ca", "root.crt"), "utf8");
    for (let i = 0; i < 3; i++) assert.equal(await get(g.httpsPort, ca), 200);
    await waitFor("access_log.write_failed", () => g.events().find((e) => e.event === "access_log.write_failed"));
    assert.equal(await get(g.httpsPort, ca), 200, "still serving");
    const failures = g.events().filter((e) => e.event === "access_log.write_failed");
    assert.equal(failures.length, 1, JSON.stringify(failures));
    assert.match(String(failures[0]?.error), /ENOSPC/);
    assert.equal(g.process.child.exitCode, null);
  });

  it("a reopen on SIGHUP that fails is logged, and lines keep going to the file open before", async (t) => {
    const home = join(dir, "rotate");
    mkdirSync(join(home, "logs"), { recursive: true });
    const g = await startGateway(home, config("./storage", join(home, "logs", "access.log")));
    t.after(() => g.stop());
    const ca = readFileSync(join(home, "storage", "ca", "root.crt"), "utf8");
    assert.equal(await get(g.httpsPort, ca), 200);
    renameSync(join(home, "logs"), join(home, "logs.old")); // the folder is gone: the reopen cannot create the file
    g.process.child.kill("SIGHUP");
    const failed = await waitFor("access_log.reopen_failed", () => g.events().find((e) => e.event === "access_log.reopen_failed"));
    assert.match(String(failed.error), /does not exist \(ENOENT\)/);
    await waitFor("gateway.reloaded", () => g.events().find((e) => e.event === "gateway.reloaded"));
    assert.equal(await get(g.httpsPort, ca), 200, "still serving");
    await waitFor("two lines in the file open before the reopen", () => (readFileSync(join(home, "logs.old", "access.log"), "utf8").match(/"GET \/ HTTP\/1\.1" 200/g)?.length === 2 ? true : undefined));
  });
});
