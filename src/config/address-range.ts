import { BlockList, isIP } from "node:net";
import { quote } from "./config-reader.js";
import type { AddressRange } from "./gateway-config.js";

/** What an allow/deny entry parses to: the range, or what is wrong with it and what to write. */
export type AddressRangeReading = { readonly range: AddressRange } | { readonly problem: string };

const FORMS = "an IP address or CIDR range such as 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32";

/**
 * Parses an allow/deny entry: an IPv4 or IPv6 address, alone or with a prefix length (CIDR, RFC
 * 4632; RFC 4291 §2.3). Refused rather than guessed: a zone index, a second "/", a prefix length
 * out of range or with leading zeros, IPv4 parts with leading zeros (010 is 8 to inet_aton), and
 * bits set past the prefix (10.0.0.1/8: nginx warns and takes 10.0.0.0/8, but whether the whole
 * range or the one address was meant decides who gets in, so the user says which).
 */
export function parseAddressRange(text: string): AddressRangeReading {
  const got = `(got ${quote(text)})`;
  const [address = "", prefix, extra] = text.split("/");
  const suffix = prefix === undefined ? "" : `/${prefix}`;
  if (extra !== undefined) return { problem: `must be ${FORMS}, with at most one / ${got}` };
  if (address.includes("%")) return { problem: `must not have a zone index (%…) ${got}; it plays no part in matching a client, so write ${address.slice(0, address.indexOf("%"))}${suffix}` };
  const family = isIP(address) as 0 | 4 | 6;
  if (family === 0) {
    const withoutZeros = address.split(".").map((part) => (/^\d+$/.test(part) ? String(Number(part)) : part)).join(".");
    if (withoutZeros !== address && isIP(withoutZeros) === 4) return { problem: `must not have IPv4 parts with leading zeros ${got}, which some tools read as octal; write ${withoutZeros}${suffix} if that is what you mean` };
    return { problem: `must be ${FORMS} ${got}` };
  }
  const bits = family === 4 ? 32 : 128;
  if (prefix !== undefined && !(/^(?:0|[1-9]\d*)$/.test(prefix) && Number(prefix) <= bits)) {
    return { problem: `must have a prefix length from 0 to ${bits} for an IPv${family} address, in plain digits ${got}; e.g. ${family === 4 ? "203.0.113.0/24" : "2001:db8::/32"}` };
  }
  const prefixLength = prefix === undefined ? bits : Number(prefix);
  const bytes = addressBytes(address, family);
  const network = bytes.map((byte, i) => byte & ~(0xff >> Math.min(8, Math.max(0, prefixLength - 8 * i))) & 0xff);
  if (network.some((byte, i) => byte !== bytes[i])) {
    const start = formatAddress(network, family);
    return { problem: `has bits set past its /${prefixLength} prefix ${got}; write ${start}/${prefixLength} for the whole range, or ${formatAddress(bytes, family)} for that one address` };
  }
  return { range: { family: family === 4 ? "ipv4" : "ipv6", address: formatAddress(bytes, family), prefixLength } };
}

/** The 4 or 16 bytes of an address isIP accepted (IPv6 may end in a dotted IPv4 part). */
function addressBytes(address: string, family: 4 | 6): number[] {
  if (family === 4) return address.split(".").map(Number);
  const groups = (part: string): number[] =>
    part === "" ? [] : part.split(":").flatMap((group) => (group.includes(".") ? pairs(addressBytes(group, 4)) : [parseInt(group, 16)]));
  const [head = [], tail] = address.split("::").map(groups);
  const words = tail === undefined ? head : [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  return words.flatMap((word) => [word >> 8, word & 0xff]);
}

function pairs(bytes: number[]): number[] {
  return [((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0), ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)];
}

/** Dotted IPv4, or IPv6 in its canonical form. */
function formatAddress(bytes: number[], family: 4 | 6): string {
  if (family === 4) return bytes.join(".");
  return canonicalIPv6(Array.from({ length: 8 }, (_, i) => (((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0)).toString(16)).join(":"));
}

/** An IPv6 address isIP accepts, in its canonical compressed form (RFC 5952), as the WHATWG URL serializer (and so a browser's Host header) writes it. */
export function canonicalIPv6(address: string): string {
  return new URL(`http://[${address}]`).hostname.slice(1, -1);
}

/**
 * Special-purpose ranges (IANA's IPv4 and IPv6 registries, RFC 6890) that are not reachable from
 * the internet, so no public CA can validate them: what each is, for messages. The documentation
 * ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are left out so that
 * examples load; a CA refuses them at order time.
 */
const NON_PUBLIC_RANGES: ReadonlyArray<readonly [network: string, prefixLength: number, what: string]> = [
  ["0.0.0.0", 8, "a 'this network' address (RFC 791)"],
  ["10.0.0.0", 8, "a private address (RFC 1918)"],
  ["100.64.0.0", 10, "a carrier-grade NAT address (RFC 6598)"],
  ["127.0.0.0", 8, "a loopback address"],
  ["169.254.0.0", 16, "a link-local address"],
  ["172.16.0.0", 12, "a private address (RFC 1918)"],
  ["192.0.0.0", 24, "an IETF protocol address (RFC 6890)"],
  ["192.168.0.0", 16, "a private address (RFC 1918)"],
  ["198.18.0.0", 15, "a benchmarking address (RFC 2544)"],
  ["224.0.0.0", 4, "a multicast address"],
  ["240.0.0.0", 4, "a reserved address"],
  ["::", 128, "the unspecified address"],
  ["::1", 128, "a loopback address"],
  ["::ffff:0:0", 96, "an IPv4-mapped address (write the IPv4 address itself)"],
  ["100::", 64, "a discard-only address (RFC 6666)"],
  ["fc00::", 7, "a unique local (private) address (RFC 4193)"],
  ["fe80::", 10, "a link-local address"],
  ["ff00::", 8, "a multicast address"],
];

const NON_PUBLIC = NON_PUBLIC_RANGES.map(([network, prefixLength, what]) => {
  const type = isIP(network) === 4 ? "ipv4" : "ipv6";
  const list = new BlockList();
  list.addSubnet(network, prefixLength, type);
  return { type, list, what };
});

/**
 * What kind of address `address` (an IP literal) is when the internet cannot reach it, e.g.
 * "a private address (RFC 1918)"; undefined for a public address. A public CA cannot issue for these.
 */
export function nonPublicAddressKind(address: string): string | undefined {
  const type = isIP(address) === 4 ? "ipv4" : "ipv6";
  return NON_PUBLIC.find((range) => range.type === type && range.list.check(address, type))?.what;
}
