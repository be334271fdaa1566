import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { record, renderTable, type Samples } from "./report.js";

describe("renderTable's best-peer column", () => {
  const metrics = [
    { key: "ms", label: "load ms", higherIsBetter: false },
    { key: "rps", label: "req/s", higherIsBetter: true },
  ];
  const samples: Samples = new Map();
  record(samples, "gateway", { ms: 300, rps: 50 });
  record(samples, "slow", { ms: 400, rps: 100 });
  record(samples, "fast", { ms: 200, rps: 25 });
  const rows = (table: string): string[] => table.split("\n").filter((l) => l.startsWith("| load ms") || l.startsWith("| req/s"));

  it("names, per row, the peer the subject compares worst against, with that ratio", () => {
    const table = renderTable(samples, metrics, "gateway", ["slow", "fast"], [], "header", { bestPeer: true });
    assert.match(table, /\| workload \| gateway \| slow \| fast \| gateway vs slow \| gateway vs fast \| gateway vs best peer \|/);
    assert.deepEqual(rows(table), ["| load ms | 300 | 400 | 200 | 1.33x | 0.67x | 0.67x (fast) |", "| req/s | 50.0 | 100 | 25.0 | 0.50x | 2.00x | 0.50x (slow) |"]);
  });

  it("leaves the column out unless asked, and skips peers without a value (n/a)", () => {
    assert.doesNotMatch(renderTable(samples, metrics, "gateway", ["slow", "fast"], [], "header"), /best peer/);
    const table = renderTable(samples, metrics, "gateway", ["slow", "absent"], [], "header", { bestPeer: true });
    assert.deepEqual(rows(table), ["| load ms | 300 | 400 | n/a | 1.33x | n/a | 1.33x (slow) |", "| req/s | 50.0 | 100 | n/a | 0.50x | n/a | 0.50x (slow) |"]);
  });
});
