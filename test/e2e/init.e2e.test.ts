import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { GATEWAY_MAIN, runGateway } from "../support/gateway-process.js";
import { schemaProblems } from "../support/gateway-schema.js";
import { requireTool } from "../support/tools.js";

describe("gateway init writes a config that gateway check accepts", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "gateway-init-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("non-interactively, from flags", async () => {
    const config = join(dir, "flags.yaml");
    const r = await runGateway(["init", "--config", config, "--host", "jupyter.example.test", "--email", "me@example.test", "--upstream", "http://127.0.0.1:8888", "--tunnel", "me@workstation.example.edu"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /checking DNS for jupyter\.example\.test… /);
    assert.match(r.stdout, /checking port 443… /);
    const text = readFileSync(config, "utf8");
    assert.match(text, /tls: acme/);
    assert.match(text, /ssh: me@workstation\.example\.edu/);
    const check = await runGateway(["check", "--config", config]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.deepEqual(schemaProblems(text), []);
    const again = await runGateway(["init", "--config", config, "--host", "x.example.test"]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists; pass --force/);
  });

  it("refuses an invalid --host, --upstream or --tunnel before writing anything, saying what to write", async () => {
    const config = join(dir, "refused.yaml");
    const cases: Array<[string[], RegExp]> = [
      [["--host", "https://jupyter.example.test"], /^gateway init: --host must be a bare name, not a URL; write e\.g\. jupyter\.example\.com \(got "https:\/\/jupyter\.example\.test"\); nothing was written$/m],
      [["--host", "jupyter_lab.example.test"], /^gateway init: --host must be a DNS name of letters, digits, hyphens and dots; write the name that points at this server, e\.g\. jupyter\.example\.com \(got "jupyter_lab\.example\.test"\)/],
      [["--upstream", "localhost:8888"], /^gateway init: --upstream must be an http:\/\/ URL of the notebook \(got "localhost:8888"\); write e\.g\. http:\/\/127\.0\.0\.1:8888/],
      [["--upstream", "http://127.0.0.1:8888/lab"], /^gateway init: --upstream must be scheme, host and port only .*; paths pass through unchanged, so write http:\/\/127\.0\.0\.1:8888/],
      [["--tunnel", "https://me@workstation.example.edu"], /^gateway init: --tunnel must be a destination as for ssh, \[user@\]host, not a URL \(got "https:\/\/me@workstation\.example\.edu"\); write e\.g\. me@workstation\.example\.edu/],
    ];
    for (const [options, message] of cases) {
      const r = await runGateway(["init", "--config", config, "--host", "jupyter.example.test", ...options]);
      assert.equal(r.status, 2, `${options.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "", "no DNS or port checks either");
      assert.ok(!existsSync(config), `${options.join(" ")}: nothing was written`);
    }
  });

  it("interactively, answering its questions on a terminal (pty)", async () => {
    const script = requireTool("/usr/bin/script", "util-linux");
    const config = join(dir, "asked.yaml");
    const child = spawn(script, ["-qfec", `${process.execPath} ${GATEWAY_MAIN} init --config ${config}`, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    let screen = "";
    const answers: Array<[RegExp, string]> = [
      [/Public name of the notebook.*\[localhost\]: $/m, "https://lab.localhost"],
      [/must be a bare name, not a URL[^\n]*\(got "https:\/\/lab\.localhost"\)[\s\S]*Public name of the notebook.*\[localhost\]: $/m, "lab.localhost"],
      [/Where the notebook listens on this server \[http:\/\/127\.0\.0\.1:8888\]: $/m, "http://127.0.0.1:9999"],
      [/SSH tunnel to the workstation up\?.*: $/m, ""],
    ];
    child.stdout.on("data", (d: Buffer) => {
      screen += d.toString();
      const next = answers[0];
      if (next && next[0].test(screen.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ""))) {
        answers.shift();
        screen = "";
        child.stdin.write(`${next[1]}\r`);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(answers.length, 0, "every question was asked");
    assert.equal(code, 0);
    const text = readFileSync(config, "utf8");
    assert.match(text, /host: lab\.localhost/);
    assert.match(text, /upstream: http:\/\/127\.0\.0\.1:9999/);
    assert.match(text, /tls: internal/);
    const check = await runGateway(["check", "--config", config]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.deepEqual(schemaProblems(text), []);
  });
});
