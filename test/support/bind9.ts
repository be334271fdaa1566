import { execFileSync } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, waitFor, type TestProcess } from "./processes.js";
import { requireTool } from "./tools.js";

/** BIND's named, authoritative for one zone that takes TSIG-signed dynamic updates (RFC 2136), on loopback. */
export interface Bind9 {
  /** "127.0.0.1:PORT": what acme.dns.server, nsupdate and pebble's -dnsserver take. */
  readonly server: string;
  readonly port: number;
  readonly zone: string;
  readonly keyName: string;
  /** tsig-keygen's output (a BIND key statement), mode 0600. */
  readonly keyFile: string;
  readonly process: TestProcess;
  /** The TXT values named serves at `name` (none: an empty list). */
  txt(name: string): Promise<string[]>;
  stop(): Promise<void>;
}

export const NAMED = "/usr/sbin/named";
export const NSUPDATE = "/usr/bin/nsupdate";
const APT = "bind9 bind9-dnsutils";

/**
 * Starts named with a zone `zone` where every name has the address 127.0.0.1 (so pebble, asking
 * named, finds the gateway for HTTP-01 too) and which key `keyName`, made by tsig-keygen, may update.
 */
export interface Bind9Options {
  /**
   * Split horizon: signed requests (the updates) see one copy of the zone, unsigned queries
   * another, so an update is accepted and never served: a propagation that never comes.
   */
  readonly updatesInvisible?: boolean;
}

export async function startBind9(dir: string, options: Bind9Options = {}, zone = "example.test", keyName = "acme-update"): Promise<Bind9> {
  const named = requireTool(NAMED, APT);
  requireTool(NSUPDATE, APT);
  const keygen = requireTool("/usr/sbin/tsig-keygen", APT);
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, "tsig.key");
  writeFileSync(keyFile, execFileSync(keygen, ["-a", "hmac-sha256", keyName]), { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  const zoneText = ["$TTL 60", `@ IN SOA ns1.${zone}. hostmaster.${zone}. ( 1 60 60 600 60 )`, `@ IN NS ns1.${zone}.`, "@ IN A 127.0.0.1", "* IN A 127.0.0.1", ""].join("\n");
  const zoneStatement = (file: string): string => {
    writeFileSync(join(dir, file), zoneText);
    return `zone "${zone}" {\n  type primary;\n  file "${dir}/${file}";\n  allow-update { key "${keyName}"; };\n};`;
  };
  const zones = options.updatesInvisible
    ? `view "updates" {\n  match-clients { key "${keyName}"; };\n  ${zoneStatement(`${zone}.updates.zone`)}\n};\nview "queries" {\n  match-clients { any; };\n  ${zoneStatement(`${zone}.zone`)}\n};`
    : zoneStatement(`${zone}.zone`);
  const port = await freePort();
  const conf = join(dir, "named.conf");
  // No rndc (controls {}), which would take the fixed port 953; everything named writes stays in dir.
  writeFileSync(conf, `options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  session-keyfile "${dir}/session.key";
  managed-keys-directory "${dir}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
include "${keyFile}";
${zones}
`);
  // -g: foreground, log to stderr; -u only when root could drop to "bind" and still write dir, so run as is.
  const proc = startProcess(named, ["-g", "-c", conf]);
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  try {
    await waitFor(`named to answer for ${zone} (output: ${proc.output().slice(-800)})`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`named exited ${proc.child.exitCode}: ${proc.output().slice(-800)}`);
      return (await resolver.resolveSoa(zone)) ? true : undefined;
    }, 20_000, 100);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    server: `127.0.0.1:${port}`,
    port,
    zone,
    keyName,
    keyFile,
    process: proc,
    async txt(name) {
      try {
        return (await resolver.resolveTxt(name)).map((parts) => parts.join(""));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENODATA" || (err as NodeJS.ErrnoException).code === "ENOTFOUND") return [];
        throw err;
      }
    },
    stop: () => proc.stop(),
  };
}
