import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { PAGE_LOAD_METRICS } from "./page-load.js";

const RUN_BENCH = fileURLToPath(new URL("./run-bench.js", import.meta.url));

// Speed lives in `npm run bench`, never in assertions: this proves that the page-load rows are
// measured, JupyterLab 4 loading and a kernel answering in Chromium through the gateway and each
// peer (whose configs must let Jupyter's Host and Origin checks pass). Jupyter directly, the
// reference, is left out here to keep the test short (each system costs ~8 s).
describe("npm run bench -- --quick --page-load-only", { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-page-load-quick-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("loads /lab cold and warm and runs 1+1 through every system, and writes the page-load table", () => {
    const out = join(dir, "page-load.md");
    const run = spawnSync(process.execPath, [RUN_BENCH, "--quick", "--page-load-only", "--only", "nginx,caddy,configurable-http-proxy", "--out", out], { encoding: "utf8", timeout: 220_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    // The table's lines as cells: the header, the |---| line, then one line per row.
    const table = readFileSync(out, "utf8").split("\n").filter((l) => l.startsWith("|")).map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));
    const [columns, , ...rows] = table;
    assert.deepEqual(columns, ["workload", "gateway", "nginx", "caddy", "configurable-http-proxy", "gateway vs nginx", "gateway vs caddy", "gateway vs configurable-http-proxy", "gateway vs best peer"]);
    assert.deepEqual(rows.map(([label]) => label), PAGE_LOAD_METRICS.map((m) => m.label));
    for (const [label, ...cells] of rows) {
      for (const c of cells) assert.match(c, /^\d+(\.\d+)?x?( \([a-z-]+\))?$/, `${label}: "${c}" is not a measurement`);
    }
  });
});
