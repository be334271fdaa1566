import assert from "node:assert/strict";
import { it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import type { UpstreamHealth } from "../tunnel/upstream-monitor.js";
import { describeUpstreamFailure, errnoOf, upstreamRefusal } from "./upstream-failure.js";

const [plain, tunnelled] = parseConfig(
  "sites:\n  - host: a.example.com\n    upstream: http://127.0.0.1:8888\n  - host: b.example.com\n    upstream: http://127.0.0.1:9999\n    tunnel: {ssh: me@ws.example.edu, remote: localhost:8890}\n",
  "/tmp/gateway.yaml",
  "gateway.yaml",
).sites;
const now = new Date("2026-01-01T00:00:00Z");
const health = (tunnel: UpstreamHealth["tunnel"], notebook: UpstreamHealth["notebook"] = "protected", probeError: string | null = null): UpstreamHealth => ({ tunnel, notebook, probeError, checkedAt: now, proven: notebook === "protected" });
const error = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

it("tells tunnel down from notebook down from a frozen connection, each with its fix", () => {
  assert.ok(plain && tunnelled);
  const up = { kind: "up" as const, since: now, pid: 1 };
  const reconnecting = { kind: "reconnecting" as const, attempt: 2, nextAttemptAt: new Date(now.getTime() + 3000), lastError: "Connection refused" };
  const cases: Array<[string, ReturnType<typeof describeUpstreamFailure>, number, string, RegExp]> = [
    ["refused, no tunnel", describeUpstreamFailure(error("ECONNREFUSED"), plain, health(null), now), 502, "unreachable", /ssh -N -R 127\.0\.0\.1:8888:localhost:8888 server.*autossh/],
    ["reset, no tunnel", describeUpstreamFailure(error("ECONNRESET"), plain, health(null), now), 502, "reset", /Reload this page/],
    ["timeout", describeUpstreamFailure(error("ETIMEDOUT"), plain, health(null), now), 504, "timeout", /frozen/],
    ["tunnel reconnecting", describeUpstreamFailure(error("ECONNREFUSED"), tunnelled, health(reconnecting), now), 502, "tunnel_down", /reconnecting \(attempt 3, next in 3 s\); ssh said: Connection refused/],
    ["tunnel up, notebook down", describeUpstreamFailure(error("ECONNRESET"), tunnelled, health(up), now), 502, "notebook_down", /jupyter notebook --no-browser --port=8890/],
    ["tunnel up, frozen", describeUpstreamFailure(error("ETIMEDOUT"), tunnelled, health(up), now), 504, "timeout", /rebuilds it within about 20 s/],
    ["an answer that breaks HTTP", describeUpstreamFailure(error("EPROTO"), plain, health(null), now), 502, "invalid_answer", /Is it Jupyter\?/],
    ["other", describeUpstreamFailure(error("EWHATEVER"), plain, health(null), now), 502, "failed", /log has the details/],
  ];
  for (const [name, failure, status, kind, hint] of cases) {
    assert.equal(failure.status, status, name);
    assert.equal(failure.kind, kind, name);
    assert.match(failure.hint, hint, name);
  }
});

it("refuses an unprotected notebook unless the site allows it", () => {
  assert.ok(plain);
  assert.equal(upstreamRefusal(plain, health(null, "protected"), now), null);
  assert.equal(upstreamRefusal(plain, health(null, "not-a-notebook"), now)?.kind, "not_jupyter", "cannot be proven: refused, naming base_url");
  assert.equal(upstreamRefusal(plain, health(null, "unknown"), now)?.kind, "restarting", "not proven yet (a reload, an overtaken probe): refused");
  assert.match(upstreamRefusal(plain, health(null, "unprotected"), now)?.hint ?? "", /jupyter notebook password/);
  assert.equal(upstreamRefusal({ ...plain, allowUnprotectedUpstream: true }, health(null, "unprotected"), now), null);
});

it("refuses a notebook the last probe could not reach, saying why as a failed request would", () => {
  assert.ok(plain && tunnelled);
  const cases: Array<[string, UpstreamHealth, number, string]> = [
    ["refused", health(null, "unreachable", "ECONNREFUSED"), 502, "unreachable"],
    ["probe timed out", health(null, "unreachable", "UND_ERR_HEADERS_TIMEOUT"), 504, "timeout"],
    ["tunnel reconnecting", health({ kind: "reconnecting", attempt: 1, nextAttemptAt: now, lastError: "Connection refused" }, "unreachable", "ECONNREFUSED"), 502, "tunnel_down"],
  ];
  for (const [name, h, status, kind] of cases) {
    const refusal = upstreamRefusal(name === "tunnel reconnecting" ? tunnelled : plain, h, now);
    assert.equal(refusal?.status, status, name);
    assert.equal(refusal?.kind, kind, name);
  }
});

it("translates undici's errors: a broken answer is EPROTO (never retried as a stale connection), a cut socket ECONNRESET", () => {
  const undici = (code: string, message: string): Error => Object.assign(new Error(message), { code });
  assert.equal(errnoOf(undici("HPE_INVALID_HEADER_TOKEN", "Invalid header value char")), "EPROTO");
  assert.equal(errnoOf(undici("UND_ERR_HEADERS_OVERFLOW", "Headers Overflow Error")), "EPROTO");
  assert.equal(errnoOf(undici("UND_ERR_SOCKET", "bad response")), "EPROTO", "an unsolicited 100");
  assert.equal(errnoOf(undici("UND_ERR_SOCKET", "other side closed")), "ECONNRESET");
  assert.equal(errnoOf(undici("UND_ERR_HEADERS_TIMEOUT", "Headers Timeout Error")), "ETIMEDOUT");
  assert.equal(errnoOf(Object.assign(new Error("fetch failed"), { cause: error("ECONNREFUSED") })), "ECONNREFUSED");
});
