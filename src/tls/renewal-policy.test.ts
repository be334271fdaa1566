import assert from "node:assert/strict";
import { it } from "node:test";
import { isRenewalDue, renewalTime } from "./renewal-policy.js";

const DAY = 24 * 3600 * 1000;
const at = (days: number): Date => new Date(Date.UTC(2026, 0, 1) + days * DAY);

it("renews with a third of the lifetime left, or half for lifetimes under 10 days", () => {
  const cases: Array<[lifetimeDays: number, renewAtDay: number]> = [
    [90, 60],
    [45, 30],
    [7, 3.5],
    [160 / 24, 80 / 24], // Let's Encrypt's shortlived profile (IP addresses): 160 hours, renewed at 80
    [100, 100 - 100 / 3], // whatever the real lifetime, not a fixed number of days
    [6, 3],
    [10, 10 - 10 / 3],
  ];
  for (const [lifetime, renewAt] of cases) {
    const cert = { notBefore: at(0), notAfter: at(lifetime) };
    assert.equal(renewalTime(cert).getTime(), at(renewAt).getTime(), `lifetime ${lifetime} days`);
    assert.equal(isRenewalDue(cert, new Date(at(renewAt).getTime() - 1)), false);
    assert.equal(isRenewalDue(cert, at(renewAt)), true);
  }
});

it("an expired certificate is due", () => {
  assert.equal(isRenewalDue({ notBefore: at(0), notAfter: at(90) }, at(100)), true);
});
