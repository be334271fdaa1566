import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import { BASE_IMAGE, buildah, commandOf, descendants, ensureBaseImage, stopContainerRun } from "../support/containers.js";
import { freePort, startProcess, waitFor, type TestProcess } from "../support/processes.js";
import { servedCertificate } from "../support/tls-probe.js";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const IMAGE = "localhost/notebook-gateway-test";
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

describe("the Dockerfile, built with buildah and run as a user would", { timeout: 1_200_000 }, () => {
  let dir: string;
  let container: string;
  let run: TestProcess | undefined;
  let ports: { https: number; admin: number };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-image-"));
    await ensureBaseImage(dir);
    // This machine reaches the npm registry through a proxy whose CA is only in the host's bundle.
    const npmrc = join(dir, "npmrc");
    writeFileSync(npmrc, `cafile=${CA_BUNDLE}\n`);
    const mounts = existsSync(CA_BUNDLE) ? ["-v", `${CA_BUNDLE}:${CA_BUNDLE}:ro`, "-v", `${npmrc}:/usr/local/etc/npmrc:ro`] : [];
    await buildah(["bud", "--format", "docker", "--isolation", "chroot", "--build-arg", `NODE_IMAGE=${BASE_IMAGE}`, "--build-arg", `BASE_IMAGE=${BASE_IMAGE}`, ...mounts, "-t", IMAGE, REPO]);
    ports = { https: await freePort(), admin: await freePort() };
    mkdirSync(join(dir, "etc"));
    writeFileSync(join(dir, "etc", "gateway.yaml"), `listen: { address: 127.0.0.1, https: ${ports.https}, http: false }
storage: /var/lib/gateway
admin: 127.0.0.1:${ports.admin}
sites:
  - host: localhost
    upstream: http://127.0.0.1:9
    tls: internal
`);
    container = await buildah(["from", IMAGE]);
  });

  after(async () => {
    if (run) await stopContainerRun(run);
    if (container) await buildah(["rm", container]).catch(() => "");
    // vfs keeps a full copy per image: drop the build stage and earlier builds (the base image stays for the next run).
    await buildah(["rmi", "--prune"]).catch(() => "");
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs under tini as a non-root user, serves the default site over https, and gateway renew works inside", async () => {
    const inspect = await buildah(["inspect", "--format", "{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}} {{.OCIv1.Config.User}}", IMAGE]);
    assert.equal(inspect, "[/usr/bin/tini -- gateway] [serve --config /etc/gateway/gateway.yaml] gateway");
    // ENTRYPOINT and CMD exactly as the image declares them, config mounted read-only, storage the image's volume.
    run = startProcess("/usr/bin/buildah", ["--storage-driver", "vfs", "run", "--isolation", "chroot", "--user", "gateway", "-v", `${join(dir, "etc")}:/etc/gateway:ro`, container, "--", "/usr/bin/tini", "--", "gateway", "serve", "--config", "/etc/gateway/gateway.yaml"]);
    await waitFor(`/healthz (output: ${run.output().slice(-600)})`, async () => {
      const res = await request(`http://127.0.0.1:${ports.admin}/healthz`).catch(() => undefined);
      return res?.statusCode === 200 ? true : undefined;
    }, 60_000, 200);

    const tree = descendants(run.pid);
    const tini = tree.find((p) => commandOf(p).startsWith("/usr/bin/tini"));
    // The package's Node, not the base image's: the image is the .deb a server installs.
    const node = tree.find((p) => commandOf(p).startsWith("/usr/lib/notebook-gateway/node /usr/lib/notebook-gateway/dist/src/main.js serve"));
    assert.ok(tini && node, "tini runs the gateway");
    assert.ok(descendants(tini).includes(node));
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${node}/status`, "utf8"))?.[1];
    assert.notEqual(uid, "0", "the gateway does not run as root");

    // The image's HEALTHCHECK command (Docker format: OCI images have none), as the runtime runs it.
    const healthcheck = await buildah(["inspect", "--format", "{{.Docker.Config.Healthcheck.Test}}", IMAGE]);
    assert.equal(healthcheck, "[CMD gateway healthz --config /etc/gateway/gateway.yaml]");
    assert.match(await buildah(["run", "--isolation", "chroot", "--user", "gateway", "-v", `${join(dir, "etc")}:/etc/gateway:ro`, container, "--", "gateway", "healthz", "--config", "/etc/gateway/gateway.yaml"]), /\/healthz: ok/);
    const ca = readFileSync(`/proc/${node}/root/var/lib/gateway/ca/root.crt`, "utf8");
    const before = await servedCertificate(ports.https, "localhost", ca);
    assert.match(before.issuer, /notebook-gateway local CA/);

    const renew = await buildah(["run", "--isolation", "chroot", "--user", "gateway", "-v", `${join(dir, "etc")}:/etc/gateway:ro`, container, "--", "gateway", "renew", "--force", "--quiet", "--config", "/etc/gateway/gateway.yaml"], 120_000);
    assert.match(renew, /^renewed localhost: valid until/m);
    await waitFor("the renewed certificate served", async () => {
      const now = await servedCertificate(ports.https, "localhost", ca);
      return now.serialNumber !== before.serialNumber ? true : undefined;
    }, 15_000, 200);
  });
});
