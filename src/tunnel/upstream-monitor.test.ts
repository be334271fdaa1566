import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import type { Clock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import { UpstreamMonitor } from "./upstream-monitor.js";

/** Time that moves only when the test says so (the monitor's probe loop is not started here). */
class FakeClock implements Clock {
  current = new Date("2026-12-01T00:00:00Z");
  now(): Date {
    return new Date(this.current);
  }
  sleep(): Promise<void> {
    return new Promise(() => undefined);
  }
}

/**
 * The probe gate's rules, against a small HTTP server standing in for the notebook's
 * `/api/kernels` (the unit's edge): what it answers is switched per test, and it can hold an
 * answer so that an invalidation overtakes the probe.
 */
describe("UpstreamMonitor: the gate in front of the notebook", () => {
  const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  let answer = 403;
  let hold: Promise<void> | null = null;
  let probes = 0;
  let notebook: Server;
  let dir: string;
  const clock = new FakeClock();
  let monitor: UpstreamMonitor;
  let site: ReturnType<typeof parseConfig>["sites"][number];

  before(async () => {
    notebook = createServer((req, res) => {
      probes++;
      const status = answer;
      void (hold ?? Promise.resolve()).then(() => res.writeHead(status, { "content-type": "application/json" }).end(status === 200 ? "[]" : "{}"));
    });
    notebook.listen(0, "127.0.0.1");
    await once(notebook, "listening");
    dir = mkdtempSync(join(tmpdir(), "gateway-monitor-"));
    const port = (notebook.address() as AddressInfo).port;
    const config = parseConfig(`sites:\n  - host: localhost\n    upstream: http://127.0.0.1:${port}\n    tls: internal\n`, join(dir, "gateway.yaml"), "gateway.yaml");
    site = config.sites[0] as typeof site;
    monitor = new UpstreamMonitor(clock, silent, join(dir, "upstreams"), 5_000);
    monitor.update(config.sites);
  });

  after(async () => {
    await monitor.stop();
    notebook.closeAllConnections();
    notebook.close();
    // The monitor's last state file may still be landing: retry while it does.
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });

  it("trusts a proof only while a connection to the notebook stayed open since", async () => {
    answer = 403;
    await monitor.whenProven(site);
    assert.equal(monitor.health(site).proven, true);
    const again = monitor.whenProven(site);
    assert.notEqual(again, null, "proven, but no connection open: a restart would go unseen");
    await again;
    monitor.connectionOpened(site.upstream);
    assert.equal(monitor.whenProven(site), null, "proven and a connection stayed open");
    monitor.connectionOpened(site.upstream);
    monitor.connectionClosed(site.upstream);
    assert.equal(monitor.whenProven(site), null, "one connection is still open");
    monitor.connectionClosed(site.upstream);
    assert.equal(monitor.health(site).proven, false, "the last connection closed");
    const before = probes;
    await monitor.whenProven(site);
    assert.equal(probes, before + 1);
  });

  it("probes again when an invalidation overtakes a probe, so an old answer cannot prove a new notebook", async () => {
    answer = 403;
    monitor.invalidate(site.upstream);
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    const before = probes;
    const probing = monitor.whenProven(site);
    assert.ok(probing);
    while (probes === before) await new Promise((resolve) => setTimeout(resolve, 5));
    monitor.invalidate(site.upstream); // the notebook restarted while the probe was out
    answer = 200; // and came back without a password
    hold = null;
    release();
    await probing;
    assert.equal(probes, before + 2, "the overtaken probe was repeated");
    assert.equal(monitor.health(site).notebook, "unprotected");
    assert.equal(monitor.health(site).proven, false);
  });

  it("keeps an open notebook's refusal for a second, then asks it again", async () => {
    answer = 200;
    monitor.invalidate(site.upstream);
    await monitor.whenProven(site);
    assert.equal(monitor.health(site).notebook, "unprotected");
    assert.equal(monitor.whenProven(site), null, "refused from the last probe, without asking again");
    answer = 403;
    clock.current = new Date(clock.current.getTime() + 1_500);
    const probing = monitor.whenProven(site);
    assert.ok(probing, "a second later it is asked again");
    await probing;
    assert.equal(monitor.health(site).proven, true);
  });

  it("marks the notebook open from an unauthenticated answer, refusing until a probe says otherwise", async () => {
    answer = 403;
    monitor.markUnprotected(site);
    assert.equal(monitor.health(site).notebook, "unprotected");
    assert.equal(monitor.health(site).proven, false);
    assert.equal(monitor.whenProven(site), null, "the refusal stands for a second");
  });
});
