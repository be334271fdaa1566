import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GatewayError } from "../platform/gateway-error.js";
import type { Logger } from "../platform/logger.js";
import type { CertificateBundle } from "../tls/certificate-bundle.js";
import type { IssuedBundle } from "../tls/issuer.js";
import { RateLimitedError, type AcmeIssuer } from "./acme-issuer.js";
import { FallbackIssuer } from "./fallback-issuer.js";

/** The edge of the unit: a CA that answers with `outcome` (an error to throw, or "issues"). */
function ca(url: string, outcome: Error | "issues", asked: string[]): AcmeIssuer {
  const directoryUrl = new URL(url);
  return {
    directoryUrl,
    description: `ACME ${url}`,
    obtain: async () => {
      asked.push(url);
      if (outcome !== "issues") throw outcome;
      return { issuedBy: url } as IssuedBundle;
    },
    renewalWindow: async () => null,
  } as unknown as AcmeIssuer;
}

const PRIMARY = "https://primary.example/dir";
const SECOND = "https://second.example/dir";
const THIRD = "https://third.example/dir";
const REQUEST = { hosts: ["jupyter.example.com"], replacing: null };
const unreachable = (): GatewayError => new GatewayError("acme.unreachable", "cannot reach the ACME directory (ECONNREFUSED); check acme.directory");
const limited = (at: string): RateLimitedError => new RateLimitedError("creating the order: rate limited by the CA", new Date(at));

describe("FallbackIssuer: which failures go on to the next CA", () => {
  const cases: ReadonlyArray<readonly [string, Array<Error | "issues">, string[], string | RegExp]> = [
    ["the primary issues: no other CA is asked", ["issues", "issues"], [PRIMARY], PRIMARY],
    ["the primary unreachable: the next issues", [unreachable(), "issues"], [PRIMARY, SECOND], SECOND],
    ["a 5xx or a refused account at the primary, then the next down: the third issues", [new GatewayError("acme.failed", "creating the order: 503 Service Unavailable"), unreachable(), "issues"], [PRIMARY, SECOND, THIRD], THIRD],
    ["rate limited at the primary: the next issues", [limited("2026-06-01T13:00:00Z"), "issues"], [PRIMARY, SECOND], SECOND],
    ["a failed challenge stops there: every CA would find the same", [new GatewayError("acme.challenge_failed", "validating jupyter.example.com over http-01: connection refused; open port 80"), "issues"], [PRIMARY], /^validating jupyter\.example\.com over http-01: connection refused; open port 80$/],
    ["a CAA refusal names one CA: the next is asked", [new GatewayError("acme.challenge_failed", "validating jupyter.example.com over http-01: CAA record for jupyter.example.com prevents issuance"), "issues"], [PRIMARY, SECOND], SECOND],
    ["a dns-01 hook failing stops there: the hook would run again for each CA", [new GatewayError("dns.hook_failed", "the auth hook /etc/gw/hook.sh exited 1: no such zone; fix the hook"), "issues"], [PRIMARY], /^the auth hook \/etc\/gw\/hook\.sh exited 1/],
    ["a refused DNS UPDATE or a propagation timeout stops there", [new GatewayError("dns.propagation_timeout", "_acme-challenge.jupyter.example.com did not reach every authoritative server in 2m; check the zone's secondaries"), "issues"], [PRIMARY], /did not reach every authoritative server/],
    ["a bug or a store error (not a GatewayError) stops there", [new TypeError("Cannot read properties of undefined (reading 'x')"), "issues"], [PRIMARY], /Cannot read properties of undefined/],
    ["the CA lacks the challenge: the next is asked", [new GatewayError("acme.no_challenge", "jupyter.example.com: the CA offers no dns-01 challenge"), "issues"], [PRIMARY, SECOND], SECOND],
    ["every CA fails: one message with each reason in order", [unreachable(), new GatewayError("acme.eab_refused", "registering the ACME account: bad binding; check eab")], [PRIMARY, SECOND], /^every ACME CA failed: the primary https:\/\/primary\.example\/dir: cannot reach the ACME directory \(ECONNREFUSED\); check acme\.directory; then fallback 1 https:\/\/second\.example\/dir: registering the ACME account: bad binding; check eab$/],
  ];
  for (const [name, outcomes, expectedAsked, expected] of cases) {
    it(name, async () => {
      const asked: string[] = [];
      const warned: Array<Record<string, unknown>> = [];
      const logger: Logger = { info: () => undefined, warn: (_event, fields = {}) => warned.push(fields), error: () => undefined };
      const [first, ...rest] = outcomes.map((o, i) => ca([PRIMARY, SECOND, THIRD][i] as string, o, asked));
      const issuer = new FallbackIssuer([first as AcmeIssuer, ...rest], logger);
      const result = await issuer.obtain(REQUEST).then((b) => b.issuedBy, (err: Error) => err.message);
      if (typeof expected === "string") assert.equal(result, expected);
      else assert.match(result, expected);
      assert.deepEqual(asked, expectedAsked);
      assert.equal(warned.length, Math.min(expectedAsked.length - 1, outcomes.length - 1), "each switch is logged once, with its reason");
      for (const [i, w] of warned.entries()) assert.deepEqual([w.failed, w.next], [expectedAsked[i], expectedAsked[i + 1]]);
    });
  }

  it("waits (Retry-After) only when every CA rate-limited, until the first lets it try again", async () => {
    const issuer = new FallbackIssuer([ca(PRIMARY, limited("2026-06-01T15:00:00Z"), []), ca(SECOND, limited("2026-06-01T13:00:00Z"), [])], { info: () => undefined, warn: () => undefined, error: () => undefined });
    const err = await issuer.obtain(REQUEST).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfter.toISOString(), "2026-06-01T13:00:00.000Z");
    const mixed = new FallbackIssuer([ca(PRIMARY, limited("2026-06-01T15:00:00Z"), []), ca(SECOND, unreachable(), [])], { info: () => undefined, warn: () => undefined, error: () => undefined });
    const other = await mixed.obtain(REQUEST).then(() => null, (e: unknown) => e);
    assert.ok(other instanceof GatewayError && !(other instanceof RateLimitedError), "a CA that did not rate-limit may be tried again at the next pass");
  });
});

describe("FallbackIssuer.renewalWindow: ARI from the CA that issued the certificate", () => {
  const window = (url: string) => ({ start: new Date("2026-06-01T00:00:00Z"), end: new Date("2026-06-02T00:00:00Z"), fetchAgainAfter: new Date("2026-06-01T06:00:00Z"), from: url });
  function cas(asked: string[]): [AcmeIssuer, ...AcmeIssuer[]] {
    return [PRIMARY, SECOND, THIRD].map((url) => ({ directoryUrl: new URL(url), renewalWindow: async () => (asked.push(url), window(url)) }) as unknown as AcmeIssuer) as [AcmeIssuer, ...AcmeIssuer[]];
  }
  const bundle = {} as CertificateBundle;
  const logger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

  it("asks only the fallback that issued it, not the primary first", async () => {
    const asked: string[] = [];
    const got = await new FallbackIssuer(cas(asked), logger).renewalWindow(bundle, SECOND);
    assert.deepEqual(asked, [SECOND]);
    assert.equal((got as unknown as { from: string }).from, SECOND);
  });

  it("with the issuer unknown (or no longer configured), asks in order", async () => {
    for (const issuedBy of [null, undefined, "https://gone.example/dir"]) {
      const asked: string[] = [];
      await new FallbackIssuer(cas(asked), logger).renewalWindow(bundle, issuedBy);
      assert.deepEqual(asked, [PRIMARY], String(issuedBy));
    }
  });
});
