import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assessSite, describeDuration, worstLevel, type SiteFacts } from "./site-health.js";

const NOW = new Date("2025-06-01T12:00:00Z");
const DAY = 86_400_000;
/** A certificate issued `ageDays` ago that lives `lifetimeDays`. */
const cert = (ageDays: number, lifetimeDays: number) => ({ notBefore: new Date(NOW.getTime() - ageDays * DAY), notAfter: new Date(NOW.getTime() + (lifetimeDays - ageDays) * DAY) });
const HEALTHY: SiteFacts = { certificate: cert(10, 90), lastError: null, notebook: "protected", allowUnprotectedUpstream: false };

describe("assessSite: Nagios levels for gateway status", () => {
  const cases: Array<[string, Partial<SiteFacts>, string[]]> = [
    ["healthy", {}, []],
    ["90-day certificate, 8 days left", { certificate: cert(82, 90) }, []],
    ["90-day certificate, 6 days left", { certificate: cert(84, 90) }, ["warning: certificate expires in 6 days"]],
    ["tls: internal's 7-day certificate at half-life", { certificate: cert(3.5, 7) }, []],
    ["7-day certificate, 36 hours left (renewal overdue)", { certificate: cert(5.5, 7) }, ["warning: certificate expires in 36 hours"]],
    ["expired an hour ago", { certificate: cert(90 + 1 / 24, 90) }, ["critical: certificate expired 1 hour ago"]],
    ["no certificate", { certificate: null }, ["critical: no certificate yet; gateway serve or gateway renew obtains one"]],
    ["renewal failing", { lastError: "the CA said no" }, ["warning: renewal failing: the CA said no"]],
    ["tunnel up", { tunnel: { kind: "up", since: "x" } }, []],
    ["tunnel reconnecting", { tunnel: { kind: "reconnecting", attempt: 2, lastError: "refused" } }, ["warning: tunnel reconnecting (attempt 2): refused"]],
    ["tunnel down", { tunnel: { kind: "reconnecting", attempt: 5, lastError: "refused" } }, ["critical: tunnel down (attempt 5): refused"]],
    ["tunnel never recorded", { tunnel: null }, ["critical: tunnel down: no record of it; is gateway serve running?"]],
    ["tunnel up, recorded a minute ago", { tunnel: { kind: "up", since: "x" }, tunnelRecordedAt: new Date(NOW.getTime() - 60_000) }, []],
    ["tunnel up, recorded by a serve gone for 2 hours", { tunnel: { kind: "up", since: "x" }, tunnelRecordedAt: new Date(NOW.getTime() - 2 * 3600_000) }, ["critical: tunnel state unknown: serve last recorded it 2 hours ago; is gateway serve running?"]],
    ["tunnel stopped", { tunnel: { kind: "stopped" } }, ["critical: tunnel down: stopped; is gateway serve running?"]],
    ["notebook without a password", { notebook: "unprotected" }, ["critical: notebook answers without a password; run jupyter notebook password"]],
    ["notebook without a password, allowed", { notebook: "unprotected", allowUnprotectedUpstream: true }, []],
    ["notebook not reachable", { notebook: "unreachable" }, ["warning: notebook not reachable"]],
  ];
  for (const [name, facts, expected] of cases) {
    it(name, () => assert.deepEqual(assessSite({ ...HEALTHY, ...facts }, NOW).map((p) => `${p.level}: ${p.message}`), expected));
  }

  it("the worst level wins", () => {
    assert.equal(worstLevel([]), "ok");
    assert.equal(worstLevel([{ level: "warning", message: "" }]), "warning");
    assert.equal(worstLevel([{ level: "warning", message: "" }, { level: "critical", message: "" }]), "critical");
  });
});

describe("describeDuration", () => {
  const cases: Array<[number, string]> = [
    [30 * DAY + 5_000, "30 days"],
    [2 * DAY, "2 days"],
    [2 * DAY - 1, "47 hours"],
    [3_600_000, "1 hour"],
    [59 * 60_000, "59 minutes"],
    [60_000, "1 minute"],
    [59_999, "less than a minute"],
  ];
  for (const [ms, text] of cases) it(`${ms} ms: ${text}`, () => assert.equal(describeDuration(ms), text));
});
