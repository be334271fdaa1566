import { isIPv6 } from "node:net";

/** An RFC 8555 §6.7 problem document, as a CA attaches it to a challenge that failed. */
export interface AcmeProblem {
  /** e.g. "urn:ietf:params:acme:error:connection". */
  readonly type?: string;
  /** The CA's own words, e.g. "Connection refused" or "… returned 404". */
  readonly detail?: string;
}

/** The challenge types the gateway answers. */
export type ChallengeType = "http-01" | "tls-alpn-01" | "dns-01";

/** A cause the CA's words give away, and what the operator does about it. */
interface HintRule {
  readonly matches: (type: string, detail: string) => boolean;
  readonly hint: (port: number) => string;
}

/**
 * Ordered: the first rule that matches gives the hint. Matched on the problem type (RFC 8555
 * §6.7) and on the detail wording of Boulder (Let's Encrypt) and Pebble, which differ.
 */
const RULES: readonly HintRule[] = [
  {
    matches: (type) => type.endsWith(":caa"),
    hint: () => "a CAA record of the domain does not allow this CA; add one that does (Let's Encrypt: 0 issue \"letsencrypt.org\") or remove the CAA records",
  },
  {
    matches: (type, detail) => type.endsWith(":rejectedIdentifier") || /policy forbids/i.test(detail),
    hint: () => "the CA does not issue for this name; use a public DNS name, or tls: internal for local names",
  },
  {
    matches: (type, detail) => type.endsWith(":dns") || /DNS problem|NXDOMAIN|SERVFAIL|no valid (?:A|AAAA|IP)|no such host|could not resolve/i.test(detail),
    hint: () => "the CA cannot find an address for the name; create an A (and, only if IPv6 works here, AAAA) record pointing at this server",
  },
  {
    matches: (_type, detail) => /connection refused/i.test(detail),
    hint: (port) => `nothing accepts connections on port ${port} at the address the CA found; point DNS at this server, open port ${port} in the firewall (and any cloud security group), and keep gateway serve (or gateway renew) listening there`,
  },
  {
    matches: (_type, detail) => /time(?:d)? ?out|deadline exceeded|no route to host|network is unreachable/i.test(detail),
    hint: (port) => `port ${port} does not answer at the address the CA found: a firewall drops it, or DNS points at a server that is down; open port ${port} to the whole internet (the CA validates from several places) and point DNS at this server`,
  },
  {
    matches: (_type, detail) => /key ?authorization|did not match|incorrect tls-alpn|mismatch/i.test(detail),
    hint: (port) => `another server answers the challenge for this name with its own answer; point DNS at this server, or stop the other ACME client answering on port ${port}`,
  },
  {
    matches: (_type, detail) => /returned \d{3}|invalid response|non-200|status code|\b[345]\d\d$/i.test(detail),
    hint: (port) => `something other than this gateway answers port ${port} for the name (another web server here, a gateway with other storage, or the server DNS points at); stop it, let it pass /.well-known/acme-challenge/ to the gateway, or point DNS here`,
  },
  {
    matches: (type, detail) => type.endsWith(":tls") || /tls|alpn|certificate/i.test(detail),
    hint: (port) => `what answers port ${port} for the name is not this gateway speaking acme-tls/1 (a proxy or load balancer in front of it terminates TLS?); let the gateway hold port ${port}, or use acme.challenge: http-01`,
  },
];

/** The port a CA validates on (RFC 8555 §8.3, RFC 8737 §3): not configurable at the CA. */
function validationPort(challenge: Exclude<ChallengeType, "dns-01">): number {
  return challenge === "http-01" ? 80 : 443;
}

/**
 * One line for a challenge the CA refused: its detail, then what to do, e.g. "Connection
 * refused; nothing accepts connections on port 80 … open port 80 in the firewall …".
 */
export function describeChallengeProblem(problem: AcmeProblem, challenge: ChallengeType): string {
  const type = problem.type ?? "";
  const detail = (problem.detail ?? "no reason given").replace(/\s+/g, " ").trim();
  if (challenge === "dns-01") {
    // The record was in place on the server the gateway updated (or the hook said so): the CA asks the zone's public servers.
    return `${detail}; the CA's DNS lookup did not find the value the gateway published: check that every NS of the zone (secondaries too) serves the _acme-challenge TXT record, and that no CNAME or delegation of _acme-challenge points elsewhere`;
  }
  const port = validationPort(challenge);
  const rule = RULES.find((r) => r.matches(type, detail));
  const hint = rule ? rule.hint(port) : `check that port ${port} for the name reaches this gateway from the internet`;
  // Let's Encrypt tries IPv6 first when the name has an AAAA record.
  const usedIpv6 = (detail.match(/[0-9a-f:]{3,}/gi) ?? []).some((word) => isIPv6(word.replace(/:$/, "")));
  const ipv6 = usedIpv6 ? " (the CA used IPv6: if IPv6 does not reach this server, remove the AAAA record)" : "";
  return `${detail}; ${hint}${ipv6}`;
}
