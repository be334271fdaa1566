import assert from "node:assert/strict";
import { execFile as execFileCb } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { Agent, request } from "undici";
import { BASE_IMAGE, buildah, commandOf, descendants, ensureBaseImage, stopContainerRun } from "../support/containers.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";
import { freePort, startProcess, waitFor, type TestProcess } from "../support/processes.js";
import { servedCertificate } from "../support/tls-probe.js";
import { requireTool } from "../support/tools.js";

const execFile = promisify(execFileCb);
const REPO = fileURLToPath(new URL("../../../", import.meta.url));

/** The unit's ExecStart line, so the test starts the gateway exactly as systemd would. */
function unitExecStart(): string[] {
  const line = /^ExecStart=(.+)$/m.exec(readFileSync(join(REPO, "packaging", "notebook-gateway.service"), "utf8"))?.[1];
  assert.ok(line, "the unit has an ExecStart line");
  return line.split(" ");
}

/**
 * The .deb that packaging/build-deb.sh makes, installed with apt into a fresh Debian 12 container
 * from which Node was removed, then run as the package sets it up: the unit's command line, as
 * the `gateway` user the package creates, reached over https from outside the container.
 */
describe("the Debian package on Debian 12 without Node", { timeout: 1_200_000 }, () => {
  let dir: string;
  let deb: string;
  let container: string;
  let notebook: Server;
  let run: TestProcess | undefined;
  const inContainer = (args: string[], user = "root"): Promise<string> => buildah(["run", "--isolation", "chroot", "--user", user, container, "--", ...args], 300_000);

  before(async () => {
    requireTool("/usr/bin/dpkg-deb", "dpkg");
    dir = mkdtempSync(join(tmpdir(), "gateway-deb-"));
    await ensureBaseImage(dir);
    const built = performance.now();
    deb = (await execFile("bash", [join(REPO, "packaging", "build-deb.sh"), join(dir, "out")], { timeout: 600_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, DEB_COMPRESSION: "gzip" } })).stdout.trim().split("\n").pop() as string;
    console.log(`# built ${deb} (${(statSync(deb).size / 1024 / 1024).toFixed(1)} MiB) in ${((performance.now() - built) / 1000).toFixed(0)} s`);
    container = await buildah(["from", BASE_IMAGE]);
    await inContainer(["sh", "-c", "rm -rf /usr/local/bin/node /usr/local/bin/npm /usr/local/bin/npx /usr/local/lib/node_modules"]);
    await buildah(["copy", container, deb, "/tmp/notebook-gateway.deb"]);
    notebook = createServer(notebookStandIn((_req, res) => res.end("the notebook\n")));
    await new Promise<void>((resolve) => notebook.listen(0, "127.0.0.1", resolve));
  });

  after(async () => {
    if (run) await stopContainerRun(run);
    if (container) await buildah(["rm", container]).catch(() => "");
    notebook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("installs with apt, sets up its user and folders, and gateway serve (the unit's command) serves", async (t) => {
    assert.equal(await inContainer(["sh", "-c", "command -v node || echo none"]), "none", "the container has no Node");
    const install = await inContainer(["apt-get", "install", "-y", "--no-install-recommends", "/tmp/notebook-gateway.deb"]);
    assert.match(install, /Setting up notebook-gateway/);

    assert.match(await inContainer(["gateway", "--version"]), /^gateway \d+\.\d+\.\d+$/);
    assert.match(await inContainer(["id", "gateway"]), /uid=\d+\(gateway\) gid=\d+\(gateway\)/);
    assert.equal(await inContainer(["stat", "-c", "%U %a", "/var/lib/gateway"]), "gateway 700");
    assert.equal(await inContainer(["stat", "-c", "%U %G %a", "/var/log/gateway"]), "gateway adm 750");
    for (const file of ["/usr/share/man/man1/gateway.1.gz", "/usr/share/bash-completion/completions/gateway", "/etc/gateway/gateway.yaml", "/lib/systemd/system/notebook-gateway.service", "/lib/systemd/system/notebook-gateway-renew.timer", "/etc/cron.d/notebook-gateway", "/etc/logrotate.d/notebook-gateway"]) {
      await inContainer(["test", "-f", file]);
    }
    // The installed default config is valid as it stands.
    assert.match(await inContainer(["sh", "-c", "gateway check --config /etc/gateway/gateway.yaml; echo exit=$?"], "gateway"), /exit=[01]$/);

    // A site in front of a notebook on the host (the container shares its network), on free ports.
    const ports = { https: await freePort(), admin: await freePort() };
    const etc = join(dir, "etc");
    mkdirSync(etc);
    writeFileSync(join(etc, "gateway.yaml"), `listen: { address: 127.0.0.1, https: ${ports.https}, http: false }
storage: /var/lib/gateway
admin: 127.0.0.1:${ports.admin}
logs: { access: /var/log/gateway/access.log }
sites:
  - host: localhost
    upstream: http://127.0.0.1:${(notebook.address() as AddressInfo).port}
    tls: internal
`);
    const started = performance.now();
    run = startProcess("/usr/bin/buildah", ["--storage-driver", "vfs", "run", "--isolation", "chroot", "--user", "gateway", "-v", `${etc}:/etc/gateway:ro`, container, "--", ...unitExecStart()]);
    await waitFor(`/healthz (output: ${run.output().slice(-600)})`, async () => {
      const res = await request(`http://127.0.0.1:${ports.admin}/healthz`).catch(() => undefined);
      return res?.statusCode === 200 ? true : undefined;
    }, 60_000, 100);
    const readyMs = performance.now() - started;
    assert.match(await buildah(["run", "--isolation", "chroot", "--user", "gateway", "-v", `${etc}:/etc/gateway:ro`, container, "--", "gateway", "healthz", "--config", "/etc/gateway/gateway.yaml"]), /\/healthz: ok/);

    const gateway = descendants(run.pid).find((p) => commandOf(p).startsWith("/usr/lib/notebook-gateway/node /usr/lib/notebook-gateway/dist/src/main.js serve"));
    assert.ok(gateway, `the bundled Node runs the gateway: ${descendants(run.pid).map(commandOf).join("; ")}`);
    const status = readFileSync(`/proc/${gateway}/status`, "utf8");
    assert.notEqual(/^Uid:\s+(\d+)/m.exec(status)?.[1], "0", "the gateway does not run as root");
    const ca = readFileSync(`/proc/${gateway}/root/var/lib/gateway/ca/root.crt`, "utf8");
    assert.match((await servedCertificate(ports.https, "localhost", ca)).issuer, /notebook-gateway local CA/);
    const res = await request(`https://localhost:${ports.https}/`, { dispatcher: new Agent({ connect: { ca } }) });
    assert.equal(await res.body.text(), "the notebook\n");
    const rssMiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${gateway}/status`, "utf8"))?.[1]) / 1024;
    t.diagnostic(`serve answered /healthz ${(readyMs / 1000).toFixed(2)} s after the unit's command started; RSS ${rssMiB.toFixed(1)} MiB after one request`);
  });
});
