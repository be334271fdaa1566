import { checkUpdateAccess } from "../acme/dns/rfc2136-challenge.js";
import { describeServer } from "../acme/dns/dns-transport.js";
import type { DnsUpdateConfig } from "../config/gateway-config.js";
import { describeError } from "../platform/logger.js";
import type { Finding } from "./finding.js";

/**
 * dns-01 over RFC 2136: for each name's zone (checked once per zone), that the key file reads,
 * the server answers the zone's SOA, and it takes a signed UPDATE that changes nothing.
 */
export async function checkDnsUpdates(config: DnsUpdateConfig, hosts: readonly string[], now: Date): Promise<Finding[]> {
  const findings: Finding[] = [];
  const checkedZones = new Set<string>();
  for (const host of hosts) {
    try {
      const { zone, keyName } = await checkUpdateAccess(config, host, now);
      if (checkedZones.has(zone)) continue;
      checkedZones.add(zone);
      findings.push({ level: "ok", text: `acme.dns: ${describeServer(config.server)} takes updates to zone ${zone} signed with TSIG key ${keyName}` });
    } catch (err) {
      findings.push({ level: "problem", text: `acme.dns: dns-01 for ${host}: ${describeError(err)}` });
    }
  }
  return findings;
}
