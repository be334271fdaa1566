import { BlockList, isIPv4 } from "node:net";
import type { AddressRange, SiteConfig } from "../config/gateway-config.js";

/** A site's `allow`/`deny` lists as BlockLists: deny wins; a non-empty allow list admits only its ranges. */
class AddressRules {
  private readonly allow: BlockList | null;
  private readonly deny: BlockList | null;

  constructor(site: SiteConfig) {
    this.allow = site.allow.length > 0 ? toBlockList(site.allow) : null;
    this.deny = site.deny.length > 0 ? toBlockList(site.deny) : null;
  }

  permits(address: string): boolean {
    // Without lists (the default) every request would pay for parsing its address for nothing.
    if (this.allow === null && this.deny === null) return true;
    const [ip, family] = normalise(address);
    if (this.deny?.check(ip, family)) return false;
    return this.allow === null || this.allow.check(ip, family);
  }
}

const rulesBySite = new WeakMap<SiteConfig, AddressRules>();

/** Whether the client at `address` may reach `site`. */
export function isAddressPermitted(site: SiteConfig, address: string): boolean {
  let rules = rulesBySite.get(site);
  if (!rules) {
    rules = new AddressRules(site);
    rulesBySite.set(site, rules);
  }
  return rules.permits(address);
}

function toBlockList(ranges: readonly AddressRange[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) list.addSubnet(range.address, range.prefixLength, range.family);
  return list;
}

/** IPv4 clients on a dual-stack socket appear as ::ffff:a.b.c.d; match them as IPv4. */
function normalise(address: string): [string, "ipv4" | "ipv6"] {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return [mapped[1], "ipv4"];
  return [address, isIPv4(address) ? "ipv4" : "ipv6"];
}
