import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Metrics } from "./metrics.js";

describe("Metrics", () => {
  it("renders its own counters and gauges plus other processes' snapshots, summed by name and labels", () => {
    const worker = (requests: number, open: number): Metrics => {
      const m = new Metrics();
      m.count("gateway_requests_total", "Responses.", { site: "a", status: "200" }, requests);
      m.gauge("gateway_websockets_open", "Open.", () => [[{}, open]]);
      return m;
    };
    const primary = new Metrics();
    primary.count("gateway_login_lockouts_total", "Lock-outs.", { site: "a" });
    const text = primary.render([worker(3, 1).snapshot(), worker(4, 2).snapshot()]);
    assert.equal(text, [
      "# HELP gateway_login_lockouts_total Lock-outs.",
      "# TYPE gateway_login_lockouts_total counter",
      'gateway_login_lockouts_total{site="a"} 1',
      "# HELP gateway_requests_total Responses.",
      "# TYPE gateway_requests_total counter",
      'gateway_requests_total{site="a",status="200"} 7',
      "# HELP gateway_websockets_open Open.",
      "# TYPE gateway_websockets_open gauge",
      "gateway_websockets_open 3",
      "",
    ].join("\n"));
  });

  it("renders alone as before: counters, then gauges", () => {
    const m = new Metrics();
    m.gauge("g", "A gauge.", () => [[{ site: "x" }, 2]]);
    m.count("c", "A counter.");
    assert.equal(m.render(), '# HELP c A counter.\n# TYPE c counter\nc 1\n# HELP g A gauge.\n# TYPE g gauge\ng{site="x"} 2\n');
  });
});
