import assert from "node:assert/strict";
import { it } from "node:test";
import { describeUpstreamFailure } from "./upstream-failure.js";

it("maps upstream errors to a status, a kind and a hint with the fix", () => {
  const upstream = new URL("http://127.0.0.1:8888");
  const cases: Array<[string, number, string, RegExp]> = [
    ["ECONNREFUSED", 502, "unreachable", /ssh -N -L 127\.0\.0\.1:8888:localhost:8888/],
    ["ETIMEDOUT", 504, "timeout", /frozen/],
    ["ECONNRESET", 502, "reset", /reload this page/],
    ["EWHATEVER", 502, "failed", /log has the details/],
  ];
  for (const [code, status, kind, hint] of cases) {
    const failure = describeUpstreamFailure(Object.assign(new Error("x"), { code }), upstream);
    assert.equal(failure.status, status, code);
    assert.equal(failure.kind, kind, code);
    assert.match(failure.hint, hint, code);
  }
});
