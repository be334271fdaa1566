import assert from "node:assert/strict";
import { it } from "node:test";
import { acmeIdentifier, tlsAlpnServerName } from "./ip-identifier.js";

it("orders IP addresses as ip identifiers and names as dns (RFC 8738 §3)", () => {
  assert.deepEqual(acmeIdentifier("203.0.113.7"), { type: "ip", value: "203.0.113.7" });
  assert.deepEqual(acmeIdentifier("2001:db8::7"), { type: "ip", value: "2001:db8::7" });
  assert.deepEqual(acmeIdentifier("jupyter.example.com"), { type: "dns", value: "jupyter.example.com" });
});

it("TLS-ALPN-01 for an IP address is validated under its reverse-DNS name (RFC 8738 §6)", () => {
  const cases: Array<[string, string]> = [
    ["127.0.0.1", "1.0.0.127.in-addr.arpa"],
    ["203.0.113.7", "7.113.0.203.in-addr.arpa"],
    // RFC 8738 §6's example
    ["2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"],
    ["::1", `1.${"0.".repeat(31)}ip6.arpa`],
    ["::ffff:1.2.3.4", "4.0.3.0.2.0.1.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"],
    ["Jupyter.Example.com", "jupyter.example.com"],
  ];
  for (const [host, name] of cases) assert.equal(tlsAlpnServerName(host), name, host);
});
