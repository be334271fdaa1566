import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import { systemClock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import { SshTunnel } from "./ssh-tunnel.js";

const dir = mkdtempSync(join(tmpdir(), "ssh-tunnel-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A loopback port nothing listens on: ssh's connection is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it("a PID file that cannot be written is logged, and the tunnel is still supervised and retried", async () => {
  const events: Array<{ event: string; fields: Record<string, unknown> }> = [];
  const push = (event: string, fields: object = {}): number => events.push({ event, fields: fields as Record<string, unknown> });
  const logger: Logger = { info: push, warn: push, error: push };
  const yaml = `sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:${await closedPort()}\n    tunnel: { ssh: root@127.0.0.1, port: ${await closedPort()}, remote: "localhost:8888" }\n`;
  const site = parseConfig(yaml, join(dir, "gateway.yaml"), "gateway.yaml").sites[0];
  assert.ok(site);
  const pidFile = join(dir, "no-such-folder", "ssh.pid");
  const rejections: unknown[] = [];
  const onRejection = (err: unknown): number => rejections.push(err);
  process.on("unhandledRejection", onRejection);
  const tunnel = new SshTunnel(site, systemClock, logger, () => undefined, pidFile);
  try {
    tunnel.start();
    for (let i = 0; i < 200 && events.filter((e) => e.event === "tunnel.down").length < 2; i++) await sleep(25);
    assert.deepEqual(rejections, []);
    const downs = events.filter((e) => e.event === "tunnel.down");
    assert.equal(downs.length, 2, `ssh is retried after it failed; events: ${JSON.stringify(events)}`);
    assert.match(String(downs[0]?.fields.reason), /Connection refused/);
    const pidFailure = events.find((e) => e.event === "tunnel.pid_file_failed");
    assert.match(String(pidFailure?.fields.error), /ENOENT/);
    assert.equal(pidFailure?.fields.file, pidFile);
  } finally {
    await tunnel.stop();
    process.off("unhandledRejection", onRejection);
  }
});
