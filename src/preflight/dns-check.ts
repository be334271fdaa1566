import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { Finding } from "./finding.js";

/** A host name's addresses (IPv4 and IPv6); rejects with the resolver's error code (ENOTFOUND, …). */
export type ResolveHost = (host: string) => Promise<string[]>;

/** The system's resolution (getaddrinfo: /etc/hosts, then DNS), as serve and ssh see names. */
export const lookupHost: ResolveHost = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Whether `host` resolves to an address of this machine, which the CA must reach to validate it;
 * for an IP address, whether it is one of this machine's (nothing is resolved).
 * Another address is a warning, not a problem: behind NAT or a load balancer the public address
 * is never one of the machine's own.
 */
export async function checkDnsPointsHere(host: string, resolveHost: ResolveHost, timeoutMs: number, at = ""): Promise<Finding> {
  if (isIP(host) !== 0) return checkAddressIsHere(host, at);
  let addresses: string[];
  try {
    addresses = await withTimeout(resolveHost(host), timeoutMs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const reason = code === "ETIMEOUT" ? `no answer within ${timeoutMs / 1000} s` : code;
    return { level: "problem", text: `${at}DNS: ${host} does not resolve (${reason}); create an A (and AAAA) record pointing at this server's public address: the CA connects to it to validate the certificate` };
  }
  const mine = localAddresses();
  const elsewhere = addresses.filter((a) => !mine.has(a));
  if (elsewhere.length === 0) return { level: "ok", text: `DNS: ${host} resolves to ${addresses.join(", ")}, this server` };
  const here = addresses.filter((a) => mine.has(a));
  return {
    level: "warning",
    text: `${at}DNS: ${host} resolves to ${elsewhere.join(", ")}, which is not an address of this server${here.length > 0 ? ` (${here.join(", ")} is)` : ""}. Fine if that address forwards ports 80 and 443 here (NAT, a load balancer); otherwise fix the DNS record before serving, or the CA validates against another machine`,
  };
}

/** An IP-address site: nothing to resolve; the CA connects to the address itself, which should be this server's. */
function checkAddressIsHere(address: string, at: string): Finding {
  if (localAddresses().has(address)) return { level: "ok", text: `${address} is an address of this server` };
  return {
    level: "warning",
    text: `${at}${address} is not an address of this server. Fine if that address forwards ports 80 and 443 here (NAT, a cloud provider's public IP); otherwise the CA validates against another machine: write this server's public address as host`,
  };
}

function localAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("DNS timeout"), { code: "ETIMEOUT" })), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
