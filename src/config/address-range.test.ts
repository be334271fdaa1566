import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAddressRange } from "./address-range.js";

describe("parseAddressRange", () => {
  const accepted: Array<[string, string, number, "ipv4" | "ipv6"]> = [
    ["203.0.113.7", "203.0.113.7", 32, "ipv4"],
    ["203.0.113.0/24", "203.0.113.0", 24, "ipv4"],
    ["10.0.0.0/8", "10.0.0.0", 8, "ipv4"],
    ["0.0.0.0/0", "0.0.0.0", 0, "ipv4"],
    ["10.0.0.0/32", "10.0.0.0", 32, "ipv4"],
    ["10.128.0.0/9", "10.128.0.0", 9, "ipv4"],
    ["2001:db8::/32", "2001:db8::", 32, "ipv6"],
    ["2001:DB8:0:0::/32", "2001:db8::", 32, "ipv6"],
    ["::1", "::1", 128, "ipv6"],
    ["::/0", "::", 0, "ipv6"],
    ["fe80::/10", "fe80::", 10, "ipv6"],
    ["2001:db8::8000:0/97", "2001:db8::8000:0", 97, "ipv6"],
    ["::ffff:10.0.0.0/104", "::ffff:a00:0", 104, "ipv6"],
  ];
  for (const [text, address, prefixLength, family] of accepted) {
    it(`takes ${text}`, () => assert.deepEqual(parseAddressRange(text), { range: { family, address, prefixLength } }));
  }

  const refused: Array<[string, RegExp]> = [
    ["10.0.0.0/8/8", /^must be an IP address or CIDR range such as .*, with at most one \/ \(got "10\.0\.0\.0\/8\/8"\)$/],
    ["10.0.0.0/33", /^must have a prefix length from 0 to 32 for an IPv4 address, in plain digits \(got "10\.0\.0\.0\/33"\); e\.g\. 203\.0\.113\.0\/24$/],
    ["::1/129", /from 0 to 128 for an IPv6 address/],
    ["10.0.0.0/08", /prefix length from 0 to 32 .* plain digits/],
    ["10.0.0.0/", /prefix length from 0 to 32/],
    ["10.0.0.0/-1", /prefix length from 0 to 32/],
    ["10.0.0.0/ 8", /prefix length from 0 to 32/],
    ["10.0.0.0/8.0", /prefix length from 0 to 32/],
    ["10.0.0.1/8", /^has bits set past its \/8 prefix \(got "10\.0\.0\.1\/8"\); write 10\.0\.0\.0\/8 for the whole range, or 10\.0\.0\.1 for that one address$/],
    ["203.0.113.7/24", /write 203\.0\.113\.0\/24 for the whole range, or 203\.0\.113\.7 for that one address/],
    ["10.128.0.0/8", /write 10\.0\.0\.0\/8/],
    ["2001:db8::1/32", /write 2001:db8::\/32 for the whole range, or 2001:db8::1 for that one address/],
    ["2001:db8::8000:0/96", /write 2001:db8::\/96/],
    ["010.0.0.1", /^must not have IPv4 parts with leading zeros \(got "010\.0\.0\.1"\), which some tools read as octal; write 10\.0\.0\.1 if that is what you mean$/],
    ["10.0.0.00/24", /leading zeros .*write 10\.0\.0\.0\/24 if/],
    ["fe80::1%eth0", /^must not have a zone index .*; it plays no part in matching a client, so write fe80::1$/],
    ["", /^must be an IP address or CIDR range/],
    ["10.0.0", /^must be an IP address or CIDR range/],
    ["256.0.0.0/8", /^must be an IP address or CIDR range/],
    ["1.2.3.0400", /^must be an IP address or CIDR range/],
    ["jupyter.example.com", /^must be an IP address or CIDR range/],
    [" 10.0.0.1", /^must be an IP address or CIDR range/],
    ["1::2::3", /^must be an IP address or CIDR range/],
  ];
  for (const [text, problem] of refused) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const reading = parseAddressRange(text);
      assert.ok("problem" in reading, `accepted as ${JSON.stringify(reading)}`);
      assert.match(reading.problem, problem);
    });
  }
});
