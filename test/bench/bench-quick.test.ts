import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { METRICS } from "./workloads.js";

const RUN_BENCH = fileURLToPath(new URL("./run-bench.js", import.meta.url));

// Speed lives in `npm run bench`, never in assertions: this only proves the bench runs and
// measures every row for every system (nginx, Caddy, configurable-http-proxy, the gateway). The
// page-load rows (JupyterLab in Chromium) have a test of their own: page-load-quick.test.ts.
describe("npm run bench -- --quick", { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-quick-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("measures every workload on every system and writes the markdown table", () => {
    const out = join(dir, "bench.md");
    const run = spawnSync(process.execPath, [RUN_BENCH, "--quick", "--skip-page-load", "--out", out], { encoding: "utf8", timeout: 220_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const table = readFileSync(out, "utf8");
    const header = table.split("\n").find((l) => l.startsWith("| workload"));
    assert.equal(header, "| workload | gateway | nginx | caddy | configurable-http-proxy | node-direct | gateway vs nginx | gateway vs caddy | gateway vs configurable-http-proxy |");
    for (const metric of METRICS) {
      const row = table.split("\n").find((l) => l.startsWith(`| ${metric.label} |`));
      assert.ok(row, `no row for ${metric.label}`);
      const cells = row.split("|").slice(2, -1).map((c) => c.trim());
      assert.equal(cells.length, 8, row);
      // Over HTTP/2, configurable-http-proxy and node-direct (no h2) have no value, nor a ratio.
      const absent = metric.http2 ? [3, 4, 7] : [];
      cells.forEach((c, i) => assert.match(c, absent.includes(i) ? /^n\/a$/ : /^-?\d+(\.\d+)?x?( \(.*\))?$/, `${metric.label}: "${c}" in column ${i}`));
    }
  });
});
