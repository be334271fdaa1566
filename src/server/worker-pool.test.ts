import assert from "node:assert/strict";
import type { Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import type { SiteConfig } from "../config/gateway-config.js";
import { parseConfig } from "../config/load-config.js";
import { SiteTable } from "../config/site-table.js";
import type { LoginThrottle } from "../guard/login-throttle.js";
import { silentLogger } from "../platform/logger.js";
import { PrimaryLoginGate } from "./worker-gateway.js";
import type { FromWorker, ToWorker } from "./worker-messages.js";
import { WorkerPool } from "./worker-pool.js";

const TEXT = "sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n";
const SITE = "jupyter.example.com";
const parse = (): ReturnType<typeof parseConfig> => parseConfig(TEXT, "/etc/gateway/gateway.yaml", "gateway.yaml");

/** The edge of the pool: a worker process as node:cluster hands it over, driven by the test. */
class FakeWorker extends EventEmitter {
  static nextId = 1;
  readonly id = FakeWorker.nextId++;
  readonly process = { pid: 10_000 + this.id, kill: () => undefined };
  readonly sent: ToWorker[] = [];
  send(message: ToWorker, _handle?: unknown, done?: () => void): boolean {
    this.sent.push(message);
    done?.();
    // Drains at once, as an idle worker does.
    if (message.type === "drain") setImmediate(() => this.emit("exit", 0, null));
    return true;
  }
  isConnected(): boolean {
    return true;
  }
  isDead(): boolean {
    return false;
  }
  tell(message: FromWorker): void {
    this.emit("message", message);
  }
}

/** The throttle's in-flight count per address: what the pool reserves and settles. */
function countingThrottle(): { throttle: LoginThrottle; pending: Map<string, number>; settles: number[] } {
  const pending = new Map<string, number>();
  const settles: number[] = [];
  const throttle = {
    check: (_site: SiteConfig, address: string) => {
      pending.set(address, (pending.get(address) ?? 0) + 1);
      return null;
    },
    settle: (_site: SiteConfig, address: string) => {
      settles.push(1);
      pending.set(address, (pending.get(address) ?? 0) - 1);
    },
    record: () => undefined,
  } as unknown as LoginThrottle;
  return { throttle, pending, settles };
}

async function startPool(): Promise<{ pool: WorkerPool; forked: FakeWorker[]; counts: ReturnType<typeof countingThrottle>; reloadSites: () => void }> {
  const forked: FakeWorker[] = [];
  const counts = countingThrottle();
  let sites = new SiteTable(parse().sites);
  const pool = new WorkerPool(parse(), {
    logins: counts.throttle,
    sites: () => sites,
    tunnels: () => [],
    logger: silentLogger,
    fork: () => {
      const worker = new FakeWorker();
      forked.push(worker);
      // As a real worker does once its handler is set: hello, then ready after the start message.
      setImmediate(() => {
        worker.tell({ type: "hello" });
        worker.tell({ type: "ready", httpsPort: 8443 });
      });
      return worker as unknown as Worker;
    },
  });
  await pool.start(Buffer.alloc(48));
  return { pool, forked, counts, reloadSites: () => (sites = new SiteTable(parse().sites)) };
}

describe("worker pool", () => {
  it("reserves no login attempt for a worker whose exit came before its last messages", async () => {
    const { pool, forked, counts } = await startPool();
    const [worker] = forked;
    assert.ok(worker);
    worker.emit("exit", 1, null);
    worker.tell({ type: "login-check", id: 7, site: SITE, address: "192.0.2.1" });
    assert.deepEqual(worker.sent.at(-1), { type: "login-verdict", id: 7, lockout: { retryAfterS: 5, scope: "unavailable" } });
    assert.equal(counts.pending.get("192.0.2.1") ?? 0, 0, "a reservation nobody settles locks the address out for good");
    await pool.stop();
  });

  it("settles an attempt once when a reload replaced the site objects in between", async () => {
    const { pool, forked, counts, reloadSites } = await startPool();
    const [worker] = forked;
    assert.ok(worker);
    worker.tell({ type: "login-check", id: 1, site: SITE, address: "192.0.2.1" });
    assert.equal(counts.pending.get("192.0.2.1"), 1);
    reloadSites();
    worker.tell({ type: "login-settle", site: SITE, address: "192.0.2.1", clientLeftFirst: false });
    await pool.stop();
    assert.equal(counts.settles.length, 1);
    assert.equal(counts.pending.get("192.0.2.1"), 0);
  });

  it("replaces a worker that exits 0 unless the primary is stopping", async () => {
    const { pool, forked } = await startPool();
    forked[0]?.emit("exit", 0, "SIGTERM");
    // Replaced after a pause (RESTART_AFTER_EARLY_EXIT_MS, 1 s); a busy machine may take longer.
    for (let waited = 0; forked.length < 2 && waited < 10_000; waited += 100) await sleep(100);
    assert.equal(forked.length, 2, "the exited worker was not replaced");
    await sleep(50);
    await pool.stop();
    await sleep(1_300);
    assert.equal(forked.length, 2, "a worker was forked while stopping");
  });
});

describe("a worker's login gate", () => {
  it("refuses (503, not a lockout) when the primary's verdict never comes, and forgets the request", async () => {
    const sent: FromWorker[] = [];
    const gate = new PrimaryLoginGate((message) => sent.push(message));
    const site = parse().sites[0];
    assert.ok(site);
    assert.deepEqual(await gate.check(site, "192.0.2.1", 20), { retryAfterS: 5, scope: "unavailable" });
    assert.equal(sent.length, 1);
  });
});
