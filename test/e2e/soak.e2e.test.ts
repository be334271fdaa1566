import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatSoakReport, runSoak } from "../soak/soak.js";

/** The soak of `npm run soak` (test/soak/soak.ts) with smaller numbers: under a minute. */
describe("soak, short: load while the upstream is killed and restarted; the gateway survives and returns to its baseline", { timeout: 120_000 }, () => {
  it("serves 2,000 requests and 200 WebSocket sessions while the upstream is killed and restarted, then holds no extra fds, WebSockets or memory", async (t) => {
    const report = await runSoak({ requests: 2_000, sessions: 200, concurrency: 32, killAfterJobs: 200, downMs: 200, warmupRequests: 800, warmupSessions: 80, quietMs: 6_000, fdSlack: 5, rssGrowth: 0.2 });
    const summary = formatSoakReport(report);
    t.diagnostic(summary);
    assert.deepEqual(report.problems, [], summary);
    assert.ok(report.upstreamRestarts.sigkill >= 1 && report.upstreamRestarts.sigterm >= 1, `the load ended before the upstream was killed both ways:\n${summary}`);
  });
});
