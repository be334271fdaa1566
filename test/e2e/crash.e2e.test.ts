import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startGateway } from "../support/gateway-process.js";
import { waitFor } from "../support/processes.js";

/**
 * A bug that escapes: loaded before main.js with --import, the fault throws (or rejects) from a
 * SIGUSR2 handler, so it strikes a running gateway at a moment the test picks.
 */
const FAULT = `process.on("SIGUSR2", () => {
  const bug = new Error("injected bug");
  if (process.env.FAULT === "reject") Promise.reject(bug);
  else throw bug;
});
`;

describe("an error that escapes", { timeout: 60_000 }, () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gateway-crash-"));
    writeFileSync(join(dir, "fault.mjs"), FAULT);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const fault of ["throw", "reject"]) {
    it(`(${fault}) ends serve with one gateway.crashed JSON line on stdout and exit 70`, async (t) => {
      const home = mkdtempSync(join(dir, `${fault}-`));
      const g = await startGateway(home, "listen: { address: 127.0.0.1, https: 0, http: false }\nstorage: ./storage\nadmin: false\nsites:\n  - host: localhost\n    upstream: http://127.0.0.1:1\n    tls: internal\n", { NODE_OPTIONS: `--import=${join(dir, "fault.mjs")}`, FAULT: fault });
      t.after(() => g.stop());
      g.process.child.kill("SIGUSR2");
      const code = await waitFor("exit", () => g.process.child.exitCode ?? undefined);
      assert.equal(code, 70, g.process.output());
      const crashed = g.events().filter((e) => e.event === "gateway.crashed");
      assert.equal(crashed.length, 1, g.process.output());
      assert.equal(crashed[0]?.level, "error");
      assert.equal(crashed[0]?.error, "injected bug");
      assert.match(String(crashed[0]?.stack), /^Error: injected bug\n\s+at /);
      assert.match(String(crashed[0]?.time), /^\d{4}-\d\d-\d\dT/);
    });
  }
});
