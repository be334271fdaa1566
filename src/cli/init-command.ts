import { lookup } from "node:dns/promises";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import { createInterface } from "node:readline/promises";
import { ConfigErrors } from "../config/config-error.js";
import { hostProblem, loadConfig, sshDestinationProblem, upstreamProblem } from "../config/load-config.js";
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
 * what it can (DNS points here, ports 80/443 free), and writes a commented gateway.yaml that
 * `gateway check` accepts. Questions are asked only on a terminal; flags answer them otherwise.
 */
export async function initCommand(args: InitArgs, deps: CliDeps): Promise<ExitCode> {
  if (existsSync(args.configPath) && !args.force) {
    deps.stderr.write(`gateway init: ${args.configPath} exists; pass --force to replace it, or --config another path\n`);
    return ExitCode.Failed;
  }
  const ask = deps.stdin.isTTY ? createInterface({ input: deps.stdin, output: deps.stdout }) : null;
  /** The answer, from its option or asked on the terminal (again while it has a problem); null when an option's value is refused. */
  const answer = async (question: string, option: string, given: string | undefined, fallback: string, problem: (value: string) => string | undefined = () => undefined): Promise<string | null> => {
    if (given !== undefined) {
      const refused = given === "" ? undefined : problem(given);
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
  let host: string | null, email: string | null, upstream: string | null, tunnel: string | null, local: boolean;
  try {
    const publicNameProblem = (value: string): string | undefined => {
      const problem = hostProblem(value);
      return problem && `${problem} (got ${JSON.stringify(value)})`;
    };
    host = (await answer("Public name of the notebook (DNS name pointing at this server)", "host", args.host, "localhost", publicNameProblem))?.toLowerCase() ?? null;
    local = host === "localhost" || Boolean(host?.endsWith(".localhost"));
    email = local ? "" : await answer("Email for Let's Encrypt (optional, press Enter to skip)", "email", args.email, "");
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

  if (!local) await checkDns(host, deps);
  const ports = local ? [8443, 8080] : [443, 80];
  for (const port of ports) deps.stdout.write(`checking port ${port}… ${await portState(port)}\n`);

  const text = renderConfig({ host, local, email, upstream, tunnel, ports });
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

async function checkDns(host: string, deps: CliDeps): Promise<void> {
  deps.stdout.write(`checking DNS for ${host}… `);
  try {
    const addresses = (await lookup(host, { all: true })).map((a) => a.address);
    const mine = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
    const here = addresses.filter((a) => mine.has(a));
    deps.stdout.write(here.length > 0 ? `ok (${here.join(", ")} is this server)\n` : `resolves to ${addresses.join(", ")}, which is not an address of this server; fine behind NAT, otherwise fix the DNS record before serving (Let's Encrypt connects to it)\n`);
  } catch (err) {
    deps.stdout.write(`does not resolve (${(err as NodeJS.ErrnoException).code}); create an A/AAAA record pointing at this server before serving\n`);
  }
}

function portState(port: number): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) =>
      resolve(err.code === "EACCES" ? "needs root or CAP_NET_BIND_SERVICE (see README: systemd AmbientCapabilities)" : `in use (${err.code}); stop what holds it before serving`),
    );
    server.listen(port, "0.0.0.0", () => server.close(() => resolve("free")));
  });
}

function renderConfig(a: { host: string; local: boolean; email: string; upstream: string; tunnel: string; ports: number[] }): string {
  const upstreamPort = /:(\d+)\/?$/.exec(a.upstream)?.[1] ?? "8888";
  const lines = [
    "# gateway.yaml written by `gateway init`. Every key: README.md. Check it with `gateway check`.",
    "listen:",
    `  address: ${a.local ? "127.0.0.1" : "0.0.0.0"}`,
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
    `  - host: ${a.host}`,
    `    upstream: ${a.upstream}   # the notebook: password-protected, plain HTTP`,
    `    tls: ${a.local ? "internal        # a local CA: trust storage/ca/root.crt" : "acme            # Let's Encrypt, renewed by gateway renew (cron) and serve"}`,
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
