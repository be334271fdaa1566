import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GATEWAY_MAIN, loggedEvents, runGateway } from "../support/gateway-process.js";
import { startPebble, type Pebble } from "../support/pebble.js";
import { freePort, startProcess, waitFor, type TestProcess } from "../support/processes.js";
import { requireTool } from "../support/tools.js";

const SITE = "jupyter.example.test";

/**
 * Answers the CA's HTTP-01 requests from the storage's challenge files, as `serve` would, but only
 * once `open` is set: a test holds an order in the middle (its renew holds the lock) for as long
 * as it needs. `tokens` are the challenges the CA asked for, one per order.
 */
interface ChallengeGate {
  open: boolean;
  readonly tokens: Set<string>;
  close(): void;
}

async function startChallengeGate(port: number, storage: string): Promise<ChallengeGate> {
  const gate = { open: false, tokens: new Set<string>(), close: () => server.close() };
  const server: Server = createServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(req.url ?? "")?.[1];
    if (!token) return void res.writeHead(404).end();
    gate.tokens.add(token);
    waitFor("the test to let challenges through", () => (gate.open ? true : undefined), 60_000, 20).then(
      () => res.writeHead(200).end(readFileSync(join(storage, "acme", "challenges", token))),
      () => res.writeHead(503).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return gate;
}

describe("the renewal lock across PID namespaces (containers on one storage)", { timeout: 180_000 }, () => {
  let dir: string;
  let pebble: Pebble;
  let gate: ChallengeGate;
  let configPath: string;
  let env: Record<string, string>;
  const storage = (): string => join(dir, "storage");

  before(async () => {
    const unshare = requireTool("/usr/bin/unshare", "util-linux");
    if (process.getuid?.() !== 0) throw new Error(`these tests run ${unshare} --pid, which needs root: run them as root`);
    dir = mkdtempSync(join(tmpdir(), "gateway-lock-"));
    const ports = { https: await freePort(), http: await freePort() };
    pebble = await startPebble(join(dir, "pebble"), { httpPort: ports.http, tlsPort: ports.https });
    env = { ...process.env, NODE_EXTRA_CA_CERTS: pebble.httpsCaPath } as Record<string, string>;
    configPath = join(dir, "gateway.yaml");
    writeFileSync(configPath, `listen: { address: 127.0.0.1, https: ${ports.https}, http: ${ports.http} }\nstorage: ./storage\nadmin: false\nacme: { directory: "${pebble.directoryUrl}" }\nsites:\n  - host: ${SITE}\n    upstream: http://127.0.0.1:9\n`);
    gate = await startChallengeGate(ports.http, storage());
  });

  after(async () => {
    gate?.close();
    await pebble?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * `gateway renew --force` in a PID namespace of its own, as in a container of its own. `warmup`
   * processes run first, so the gateway's PID there is 2 + warmup: two renewers name PIDs that do
   * not exist in each other's namespace, and a lock judged by its PID would be broken at once.
   */
  function renewInNamespace(warmup: number): TestProcess {
    const script = `${"/bin/true; ".repeat(warmup)}"$@"; exit $?`;
    return startProcess("/usr/bin/unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "/bin/sh", "-c", script, "sh", process.execPath, GATEWAY_MAIN, "renew", "--config", configPath, "--force"], { env });
  }

  const events = (p: TestProcess, event: string): Array<Record<string, unknown>> => loggedEvents(p.output(), event);
  const exited = (p: TestProcess): Promise<number | null> => (p.child.exitCode !== null ? Promise.resolve(p.child.exitCode) : new Promise((resolve) => p.child.once("exit", resolve)));
  const bundle = (): string => readFileSync(join(storage(), "certificates", `${SITE}.pem`), "utf8");

  it("two renew --force at once, each in its own PID namespace: one order; the other waits, then says it was renewed elsewhere", async () => {
    gate.open = true;
    const first = await runGateway(["renew", "--config", configPath], env);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    const before = bundle();
    gate.tokens.clear();
    gate.open = false; // the first to get the lock stays in its order until the other waits for it

    const renewers = [renewInNamespace(0), renewInNamespace(2)];
    // One waits for the other's lock; with a lock judged by PID, both order at once instead.
    const waiting = await waitFor("one renewer to wait for the other's lock, or both to order", () => {
      const found = renewers.flatMap((p) => events(p, "cert.lock_waiting"))[0];
      return found ?? (renewers.flatMap((p) => events(p, "cert.obtaining")).length > 1 ? null : undefined);
    }, 30_000, 50).finally(() => (gate.open = true));
    const codes = await Promise.all(renewers.map(exited));
    const output = renewers.map((p) => p.output()).join("\n----\n");
    assert.equal(renewers.flatMap((p) => events(p, "cert.obtaining")).length, 1, `one order placed:\n${output}`);
    assert.equal(gate.tokens.size, 1, `the CA validated one order: ${[...gate.tokens].join(", ")}`);
    assert.deepEqual(codes, [0, 0], output);
    assert.ok(waiting, output);
    assert.equal(renewers.flatMap((p) => events(p, "cert.lock_taken_over")).length, 0, output);
    // The holder it waited for is named by its PID in its own namespace (2 or 4), which does not exist in the waiter's.
    assert.match(String(waiting.holder), /^pid [24] on \S+ since /);
    const lines = renewers.map((p) => p.output().split("\n").filter((l) => /^(renewed|ok) /.test(l)));
    assert.deepEqual(lines.map((l) => l.length), [1, 1], output);
    assert.deepEqual(lines.flat().map((l) => l.split(" ")[0]).sort(), ["ok", "renewed"], output);
    assert.ok(lines.flat().includes(`ok      ${SITE}: renewed by another gateway process just now`), output);
    assert.notEqual(bundle(), before);
    new X509Certificate(bundle());
  });

  it("a holder killed with SIGKILL mid-order: the next renew waits out the staleness bound (15 s), takes the lock over and orders", async (t) => {
    gate.open = false;
    gate.tokens.clear();
    const killed = renewInNamespace(0);
    await waitFor("the first renew's order to reach the CA's validation", () => (gate.tokens.size > 0 ? true : undefined), 30_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}\n${killed.output()}`);
    });
    await killed.stop("SIGKILL"); // unshare --kill-child passes the SIGKILL on to the gateway
    assert.match(readFileSync(join(storage(), "locks", `${SITE}.lock`), "utf8"), /^[0-9a-f]{24} pid 2 on /, "the killed holder's lock is left behind");
    gate.open = true;

    const started = performance.now();
    const next = renewInNamespace(2);
    const code = await exited(next);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(code, 0, next.output());
    const [takenOver] = events(next, "cert.lock_taken_over");
    assert.ok(takenOver, next.output());
    assert.ok(Number(takenOver.heartbeat_age_s) >= 15, `taken over at a heartbeat ${String(takenOver.heartbeat_age_s)} s old`);
    assert.match(String(takenOver.holder), /^pid 2 on /);
    assert.ok(seconds >= 10 && seconds < 45, `renew finished ${seconds.toFixed(1)} s after it started`);
    t.diagnostic(`taken over at a heartbeat ${String(takenOver.heartbeat_age_s)} s old; renew done ${seconds.toFixed(1)} s after it started`);
    assert.match(next.output(), new RegExp(`^renewed ${SITE.replace(/\./g, "\\.")}`, "m"));
  });
});
