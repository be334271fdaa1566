import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { createInterface } from "node:readline/promises";
import { nonPublicAddressKind } from "../config/address-range.js";
import { ConfigErrors } from "../config/config-error.js";
import { PATTERNS } from "../config/gateway-yaml-schema.js";
import { hostProblem, loadConfig, sshDestinationProblem, upstreamProblem } from "../config/load-config.js";
import { checkDnsPointsHere } from "../preflight/dns-check.js";
import { checkPort } from "../preflight/port-check.js";
import { PREFLIGHT_TIMEOUTS_MS, systemPreflightDeps, type PreflightDeps } from "../preflight/preflight.js";
import type { CliDeps } from "./cli-deps.js";
import { ExitCode } from "./exit-code.js";

export interface InitArgs {
  readonly configPath: string;
  readonly host?: string;
  readonly email?: string;
  readonly upstream?: string;
  /** [user@]workstation for `tunnel:`; empty for none. */
  readonly tunnel?: string;
  readonly force: boolean;
}

/**
 * `gateway init`: asks (or takes flags for) the public name, email, upstream and tunnel, checks
 * what it can with `gateway check`'s own checks (DNS points here, the ports can be bound), and
 * writes a commented gateway.yaml for `gateway check`. Questions are asked only on a terminal;
 * flags answer them otherwise.
 */
export async function initCommand(args: InitArgs, deps: CliDeps, preflight: PreflightDeps = systemPreflightDeps()): Promise<ExitCode> {
  if (existsSync(args.configPath) && !args.force) {
    deps.stderr.write(`gateway init: ${args.configPath} exists; pass --force to replace it, or --config another path\n`);
    return ExitCode.Failed;
  }
  const ask = deps.stdin.isTTY ? createInterface({ input: deps.stdin, output: deps.stdout }) : null;
  /** The answer, from its option or asked on the terminal (again while it has a problem); null when an option's value is refused. */
  const answer = async (question: string, option: string, given: string | undefined, fallback: string, problem: (value: string) => string | undefined = () => undefined): Promise<string | null> => {
    if (given !== undefined) {
      const refused = problem(given);
      if (refused) deps.stderr.write(`gateway init: --${option} ${refused}; nothing was written\n`);
      return refused ? null : given;
    }
    if (!ask) return fallback;
    for (;;) {
      const reply = (await ask.question(`${question} [${fallback}]: `)).trim() || fallback;
      const refused = reply === "" ? undefined : problem(reply);
      if (!refused) return reply;
      deps.stdout.write(`  ${refused}\n`);
    }
  };
  /** "" stands for no email; anything else must be one. */
  const emailProblem = (value: string): string | undefined => (value === "" || PATTERNS.email.test(value) ? undefined : `must be an email address, e.g. you@example.com (got ${JSON.stringify(value)})`);
  let host: string | null, email: string | null, upstream: string | null, tunnel: string | null, local: boolean;
  try {
    const publicNameProblem = (value: string): string | undefined => {
      const problem = hostProblem(value);
      if (problem) return `${problem} (got ${JSON.stringify(value)})`;
      const unreachable = isIP(value) !== 0 ? nonPublicAddressKind(value) : undefined;
      return unreachable && `is ${unreachable}, which Let's Encrypt cannot reach (got ${JSON.stringify(value)}); give this server's public IP address or DNS name, or localhost`;
    };
    host = (await answer("Public name of the notebook (DNS name pointing at this server, or its public IP address)", "host", args.host, "localhost", publicNameProblem))?.toLowerCase() ?? null;
    local = host === "localhost" || Boolean(host?.endsWith(".localhost"));
    email = local ? "" : await answer("Email for Let's Encrypt (optional, press Enter to skip)", "email", args.email, "", emailProblem);
    upstream = await answer("Where the notebook listens on this server", "upstream", args.upstream, "http://127.0.0.1:8888", upstreamProblem);
    tunnel = await answer("Keep an SSH tunnel to the workstation up? [user@]host, or Enter for none", "tunnel", args.tunnel, "", sshDestinationProblem);
  } catch (err) {
    if ((err as { code?: string }).code !== "ABORT_ERR") throw err;
    deps.stderr.write("\ngateway init: cancelled; nothing was written\n");
    return ExitCode.Usage;
  } finally {
    ask?.close();
  }
  if (host === null || email === null || upstream === null || tunnel === null) return ExitCode.Usage;

  if (!local) deps.stdout.write(`checking ${isIP(host) !== 0 ? "the address" : "DNS for"} ${host}… ${(await checkDnsPointsHere(host, preflight.resolveHost, PREFLIGHT_TIMEOUTS_MS.dns)).text}\n`);
  const ports = local ? [8443, 8080] : [443, 80];
  const address = local ? "127.0.0.1" : "0.0.0.0";
  for (const [i, port] of ports.entries()) {
    const finding = await checkPort({ address, port, key: i === 0 ? "listen.https" : "listen.http", at: "" });
    deps.stdout.write(`checking port ${port}… ${finding.text}\n`);
  }

  const text = renderConfig({ host, local, email, upstream, tunnel, address, ports });
  await writeFile(args.configPath, text, { mode: 0o644 });
  try {
    await loadConfig(args.configPath);
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    deps.stderr.write(`${err.problems.join("\n")}\ngateway init: wrote ${args.configPath}, but it needs the fixes above\n`);
    return ExitCode.Config;
  }
  deps.stdout.write(`wrote ${args.configPath}; next: gateway check --config ${args.configPath}, then gateway serve --config ${args.configPath}\n`);
  return ExitCode.Ok;
}

function renderConfig(a: { host: string; local: boolean; email: string; upstream: string; tunnel: string; address: string; ports: number[] }): string {
  const upstreamPort = /:(\d+)\/?$/.exec(a.upstream)?.[1] ?? "8888";
  const lines = [
    "# gateway.yaml written by `gateway init`. Every key: README.md. Check it with `gateway check`.",
    "listen:",
    `  address: ${a.address}`,
    `  https: ${a.ports[0]}`,
    `  http: ${a.ports[1]}            # ACME HTTP-01 answers and the redirect to https`,
    `storage: ${a.local ? "./storage" : "/var/lib/gateway"}   # keys and certificates (0700)`,
    "admin: 127.0.0.1:2019     # /healthz, /status, /metrics on this machine only",
  ];
  if (!a.local) {
    lines.push("acme:", ...(a.email ? [`  email: ${a.email}`] : []), "  directory: letsencrypt   # letsencrypt-staging to try things out");
  }
  lines.push(
    "sites:",
    `  - host: ${a.host.includes(":") ? JSON.stringify(a.host) : a.host}${isIP(a.host) !== 0 && !a.local ? "   # an IP address: Let's Encrypt's 6-day shortlived certificates, renewed every ~3 days" : ""}`,
    `    upstream: ${a.upstream}   # the notebook: password-protected, plain HTTP`,
    `    tls: ${a.local ? "internal        # a local CA: gateway trust makes this machine trust it" : "acme            # Let's Encrypt, renewed by gateway renew (cron) and serve"}`,
  );
  if (a.tunnel) {
    lines.push(
      "    tunnel:                   # the gateway keeps `ssh -N -L` up itself",
      `      ssh: ${a.tunnel}`,
      `      remote: localhost:${upstreamPort}`,
      "      # identity_file: /etc/gateway/id_ed25519",
      "      # known_hosts_file: /etc/gateway/known_hosts",
    );
  }
  return `${lines.join("\n")}\n`;
}
