import { isIP } from "node:net";

/** An ACME identifier (RFC 8555 §9.7.7): a DNS name, or an IP address (RFC 8738 §3). */
export interface AcmeIdentifier {
  readonly type: "dns" | "ip";
  readonly value: string;
}

/** The identifier a site's name is ordered as: `ip` for an IP address, else `dns`. */
export function acmeIdentifier(host: string): AcmeIdentifier {
  return { type: isIP(host) === 0 ? "dns" : "ip", value: host };
}

/**
 * The server name a CA sends (SNI) when it validates `host` over TLS-ALPN-01: the name itself,
 * or for an IP address its reverse-DNS name (RFC 8738 §6), e.g. 127.0.0.1 → 1.0.0.127.in-addr.arpa
 * and 2001:db8::7 → 7.0.0.0.…8.b.d.0.1.0.0.2.ip6.arpa. The challenge certificate still names the
 * address itself, as an IP subjectAltName.
 */
export function tlsAlpnServerName(host: string): string {
  const family = isIP(host);
  if (family === 4) return `${host.split(".").reverse().join(".")}.in-addr.arpa`;
  if (family === 0) return host.toLowerCase();
  // The URL parser gives the canonical form, without a dotted IPv4 tail, before expanding "::".
  const canonical = new URL(`http://[${host}]`).hostname.slice(1, -1);
  const [head = "", tail] = canonical.split("::");
  const groups = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const words = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill("0"), ...groups(tail)];
  const nibbles = words.map((word) => word.padStart(4, "0")).join("");
  return `${[...nibbles].reverse().join(".")}.ip6.arpa`;
}
