import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { GATEWAY_MAIN, runGateway } from "../support/gateway-process.js";
import { schemaProblems } from "../support/gateway-schema.js";
import { checkCommand } from "../../src/cli/check-command.js";
import { initCommand } from "../../src/cli/init-command.js";
import { systemPreflightDeps, type PreflightDeps } from "../../src/preflight/preflight.js";
import { runInProcess } from "../support/in-process-cli.js";
import { trustingAgent } from "../support/notebook-client.js";
import { startPebble } from "../support/pebble.js";
import { freePort } from "../support/processes.js";
import { requireTool } from "../support/tools.js";

describe("gateway init writes a config that gateway check runs its preflight on", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "gateway-init-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("non-interactively, from flags, with check's own DNS and port checks; check then runs every preflight on it", async () => {
    const pebble = await startPebble(join(dir, "pebble"), { httpPort: await freePort(), tlsPort: await freePort() });
    try {
      const preflight: PreflightDeps = { ...systemPreflightDeps(), resolveHost: (host) => pebble.resolveHost(host), dispatcher: trustingAgent(pebble.httpsCaPem) };
      const config = join(dir, "flags.yaml");
      const tunnel = `${userInfo().username}@127.0.0.1`;
      const r = await runInProcess((deps) => initCommand({ configPath: config, host: "jupyter.example.test", email: "me@example.test", upstream: "http://127.0.0.1:8888", tunnel, force: false }, deps, preflight));
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /checking DNS for jupyter\.example\.test… DNS: jupyter\.example\.test resolves to 127\.0\.0\.1, this server/);
      assert.match(r.out, /checking port 443… listen\.https 0\.0\.0\.0:443 /);
      const text = readFileSync(config, "utf8");
      assert.match(text, /tls: acme/);
      assert.match(text, new RegExp(`ssh: ${tunnel}`));
      assert.deepEqual(schemaProblems(text), []);
      // The CA must stay on loopback: pebble instead of Let's Encrypt, the one line changed.
      writeFileSync(config, text.replace(/directory: letsencrypt/, `directory: "${pebble.directoryUrl}"`));
      const check = await runInProcess((deps) => checkCommand(config, deps, preflight));
      assert.match(check.out, /ok +DNS: jupyter\.example\.test resolves to 127\.0\.0\.1, this server/);
      assert.match(check.out, /ok +ACME directory https:\/\/127\.0\.0\.1:\d+\/dir answers/);
      assert.match(check.out, /warning .*the notebook at 127\.0\.0\.1:8888 is not reachable now/);
      // No sshd listens on port 22 here: the only problem is the tunnel's login, with its fix.
      assert.deepEqual(check.out.split("\n").filter((l) => l.startsWith("problem")).map((l) => l.replace(/:\d+:\d+: ssh .*/, ": ssh …")), [`problem ${config}: ssh …`], check.out);
      assert.match(check.out, /ssh \S+@127\.0\.0\.1 -p 22 fails: .*Connection refused; nothing accepts SSH on 127\.0\.0\.1 port 22: start sshd there, or fix tunnel\.port/);
      assert.equal(check.code, 1);
      const again = await runGateway(["init", "--config", config, "--host", "x.example.test"]);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /exists; pass --force/);
    } finally {
      await pebble.stop();
    }
  });

  it("--host with a public IP address writes an IP-address site with tls: acme; its check asks no DNS but whether the address is this server's", async () => {
    const config = join(dir, "ip.yaml");
    const r = await runGateway(["init", "--config", config, "--host", "203.0.113.7", "--email", "me@example.test"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^checking the address 203\.0\.113\.7… 203\.0\.113\.7 is not an address of this server\. Fine if that address forwards ports 80 and 443 here/m);
    const text = readFileSync(config, "utf8");
    assert.match(text, /^ {2}- host: 203\.0\.113\.7 .*shortlived/m);
    assert.match(text, /tls: acme/);
    assert.deepEqual(schemaProblems(text), []);
  });

  it("refuses an invalid --host, --upstream or --tunnel before writing anything, saying what to write", async () => {
    const config = join(dir, "refused.yaml");
    const cases: Array<[string[], RegExp]> = [
      [["--host", "https://jupyter.example.test"], /^gateway init: --host must be a bare name, not a URL; write e\.g\. jupyter\.example\.com \(got "https:\/\/jupyter\.example\.test"\); nothing was written$/m],
      [["--host", "jupyter_lab.example.test"], /^gateway init: --host must be a DNS name of letters, digits, hyphens and dots; write the name that points at this server, e\.g\. jupyter\.example\.com \(got "jupyter_lab\.example\.test"\)/],
      [["--host", "192.168.1.20"], /^gateway init: --host is a private address \(RFC 1918\), which Let's Encrypt cannot reach \(got "192\.168\.1\.20"\); give this server's public IP address or DNS name, or localhost; nothing was written$/m],
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
    assert.match(check.stdout, /ok +\S+: configuration is valid \(1 site\(s\)\)/);
    assert.match(check.stdout, /warning \S+:\d+:\d+: lab\.localhost: nothing answers at 127\.0\.0\.1:9999 \(ECONNREFUSED\); start the notebook/, "no notebook runs there yet");
    assert.equal(check.status, 0, check.stdout);
    assert.deepEqual(schemaProblems(text), []);
  });
});
