import assert from "node:assert/strict";
import { it } from "node:test";
import { describeChallengeProblem, type AcmeProblem } from "./challenge-problem.js";

const E = "urn:ietf:params:acme:error:";

/** Details as Let's Encrypt (Boulder) and Pebble word them, and the hint each must get. */
const CASES: ReadonlyArray<readonly [string, AcmeProblem, "http-01" | "tls-alpn-01" | "dns-01", RegExp]> = [
  ["pebble 404", { type: `${E}unauthorized`, detail: "Non-200 status code from HTTP: http://a.example:5002/.well-known/acme-challenge/x returned 404" }, "http-01", /something other than this gateway answers port 80/],
  ["boulder 404", { type: `${E}unauthorized`, detail: "203.0.113.7: Invalid response from http://a.example/.well-known/acme-challenge/x: 404" }, "http-01", /something other than this gateway answers port 80/],
  ["pebble refused", { type: `${E}connection`, detail: 'Get "http://a.example:5002/.well-known/acme-challenge/x": dial tcp 127.0.0.2:5002: connect: connection refused' }, "http-01", /nothing accepts connections on port 80 .*point DNS at this server, open port 80 in the firewall/],
  ["boulder refused", { type: `${E}connection`, detail: "203.0.113.7: Fetching http://a.example/.well-known/acme-challenge/x: Connection refused" }, "http-01", /open port 80 in the firewall/],
  ["boulder timeout", { type: `${E}connection`, detail: "203.0.113.7: Fetching http://a.example/.well-known/acme-challenge/x: Timeout during connect (likely firewall problem)" }, "http-01", /a firewall drops it/],
  ["boulder NXDOMAIN", { type: `${E}dns`, detail: "DNS problem: NXDOMAIN looking up A for a.example - check that a DNS record exists for this domain" }, "http-01", /create an A .*record pointing at this server/],
  ["boulder CAA", { type: `${E}caa`, detail: "CAA record for a.example prevents issuance" }, "http-01", /CAA record .*letsencrypt\.org/],
  ["wrong answer", { type: `${E}unauthorized`, detail: "The key authorization file from the server did not match this challenge" }, "http-01", /another server answers the challenge/],
  ["alpn refused", { type: `${E}connection`, detail: "dial tcp 127.0.0.1:443: connect: connection refused" }, "tls-alpn-01", /port 443/],
  ["alpn wrong protocol", { type: `${E}tls`, detail: "Cannot negotiate ALPN protocol \"acme-tls/1\" for tls-alpn-01 challenge" }, "tls-alpn-01", /not this gateway speaking acme-tls\/1/],
  ["unknown", { type: `${E}serverInternal`, detail: "something odd" }, "http-01", /check that port 80 for the name reaches this gateway/],
  ["boulder no TXT", { type: `${E}unauthorized`, detail: "No TXT record found at _acme-challenge.a.example" }, "dns-01", /every NS of the zone \(secondaries too\) serves the _acme-challenge TXT record/],
  ["boulder wrong TXT", { type: `${E}unauthorized`, detail: 'Incorrect TXT record "abc" found at _acme-challenge.a.example' }, "dns-01", /did not find the value the gateway published/],
  ["dns-01 SERVFAIL: no port advice", { type: `${E}dns`, detail: "DNS problem: SERVFAIL looking up TXT for _acme-challenge.a.example" }, "dns-01", /^(?!.*port \d).*CNAME or delegation/],
];

it("a refused challenge gives the CA's detail and one mapped hint, on one line", () => {
  for (const [name, problem, challenge, hint] of CASES) {
    const line = describeChallengeProblem(problem, challenge);
    assert.ok(line.startsWith(`${problem.detail}; `), `${name}: ${line}`);
    assert.match(line, hint, name);
    assert.doesNotMatch(line, /\n/, name);
  }
});

it("an IPv6 address in the detail adds the AAAA record hint; a time of day does not", () => {
  assert.match(describeChallengeProblem({ detail: "2001:db8::1: Fetching http://a.example/.well-known/acme-challenge/x: Connection refused" }, "http-01"), /remove the AAAA record/);
  assert.match(describeChallengeProblem({ detail: "[2001:db8:0:0:0:0:0:1]:80: connection refused" }, "http-01"), /remove the AAAA record/);
  assert.doesNotMatch(describeChallengeProblem({ detail: "failed at 18:33:19: connection refused" }, "http-01"), /AAAA/);
});
