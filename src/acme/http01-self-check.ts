import { Resolver } from "node:dns/promises";
import { request } from "node:http";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { describePortHolder, findPortHolder } from "../platform/port-holder.js";
import { CHALLENGE_PREFIX } from "./http01-responder.js";

/** The whole check's budget: what a failing check may add to an order. */
const SELF_CHECK_TIMEOUT_MS = 3000;

/** At most this many of a name's addresses are fetched (in parallel). */
const MAX_ADDRESSES = 4;

/** Where the CA will look: the port it validates on and the DNS servers that say where. */
export interface SelfCheckTarget {
  /** listen.http: the CA's port 80, or where it reaches the gateway in tests. */
  readonly port: number;
  /** acme.resolvers; empty: the system's. */
  readonly resolvers: readonly string[];
}

/**
 * Fetches `http://<name>/.well-known/acme-challenge/<token>` the way the CA is about to: the
 * name resolved over DNS (not /etc/hosts), each address asked directly; an IP address is asked as it is. Returns what is wrong,
 * one line per finding (e.g. "… answered 404 from 203.0.113.7: something else serves port 80
 * for this name"), or nothing when every address answered the key authorization. Never throws,
 * and gives up after SELF_CHECK_TIMEOUT_MS. From inside, a NAT or a firewall open only to the
 * world can make a check fail that the CA passes: findings are warnings, never a verdict.
 */
export async function selfCheckHttp01(name: string, token: string, keyAuthorization: string, target: SelfCheckTarget, timeoutMs = SELF_CHECK_TIMEOUT_MS): Promise<string[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  // The Host header as the CA sends it (RFC 8738 §5: an IPv6 address in brackets).
  const host = `${isIP(name) === 6 ? `[${name}]` : name}${target.port === 80 ? "" : `:${target.port}`}`;
  const url = `http://${host}${CHALLENGE_PREFIX}${token}`;
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (target.resolvers.length > 0) resolver.setServers([...target.resolvers]);
  const dnsServers = resolver.getServers().join(", ");
  // An IP address is where the CA connects: nothing to look up.
  const lookups = isIP(name) !== 0
    ? [{ addresses: [name], code: null }]
    : await Promise.all([resolver.resolve4(name), resolver.resolve6(name)].map((p) => p.then((addresses) => ({ addresses, code: null }), (err: NodeJS.ErrnoException) => ({ addresses: [] as string[], code: err.code ?? "error" }))));
  const addresses = lookups.flatMap((l) => l.addresses).slice(0, MAX_ADDRESSES);
  if (addresses.length === 0) {
    const failed = lookups.find((l) => l.code !== "ENODATA" && l.code !== "ENOTFOUND");
    return [failed
      ? `could not check ${url}: looking up ${name} failed (${failed.code} from ${dnsServers})`
      : `${name} has no A or AAAA record (asked ${dnsServers}): the CA will not find this server; create an A record pointing at it`];
  }
  const local = new Set(Object.values(networkInterfaces()).flatMap((nics) => (nics ?? []).map((nic) => nic.address)));
  const findings = await Promise.all(addresses.map(async (address) => {
    const answer = await fetchAt(address, target.port, `${CHALLENGE_PREFIX}${token}`, host, signal);
    if ("status" in answer && answer.status === 200 && answer.body.trim() === keyAuthorization) return null;
    const elsewhere = local.has(address) ? "" : `; ${address} is not an address of this server: does DNS point elsewhere (or is this server behind NAT)?`;
    if ("status" in answer) {
      const holder = local.has(address) ? findPortHolder(target.port) : null;
      const held = holder ? ` (here port ${target.port} is held by ${describePortHolder(holder)})` : "";
      const what = answer.status === 200 ? "200 with another answer than this gateway's" : String(answer.status);
      return `${url} answered ${what} from ${address}: something else serves port ${target.port} for this name${held}${elsewhere}`;
    }
    if (answer.code === "ECONNREFUSED") return `${url}: connection refused at ${address}: nothing listens on port ${target.port} there${elsewhere}`;
    if (signal.aborted) return `${url}: no answer from ${address} within ${timeoutMs / 1000} s (a firewall drops it, or a NAT does not loop back to here)${elsewhere}`;
    return `${url}: ${answer.code} from ${address}${elsewhere}`;
  }));
  return findings.filter((f): f is string => f !== null);
}

type Answer = { readonly status: number; readonly body: string } | { readonly code: string };

/** GET `path` from `address`, with `host` (the site, and a port but 80) as the Host header; the body is read up to 4 KB. */
function fetchAt(address: string, port: number, path: string, host: string, signal: AbortSignal): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ host: address, port, path, headers: { host }, agent: false, signal }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", (err: NodeJS.ErrnoException) => resolve({ code: err.code ?? err.message }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ code: err.code ?? err.message }));
    req.end();
  });
}
