import { gatewayJsonSchema } from "../config/gateway-yaml-schema.js";
import type { CliDeps } from "./cli-deps.js";
import { checkCommand } from "./check-command.js";
import { clientCertCommand } from "./client-cert-command.js";
import { renderBashCompletion } from "./bash-completion.js";
import { CONFIG_OPTION, formatCommandHelp, formatUsage, parseCommandLine, type CommandSpec } from "./command-line.js";
import { initCommand } from "./init-command.js";
import { renderManPage } from "./man-page.js";
import { exportNginxCommand, importNginxCommand } from "./nginx-compat-command.js";
import { ExitCode } from "./exit-code.js";
import { packageVersion } from "./package-version.js";
import { renewCommand } from "./renew-command.js";
import { serveCommand } from "./serve-command.js";
import { statusCommand } from "./status-command.js";
import { healthzCommand } from "./healthz-command.js";
import { trustCommand } from "./trust-command.js";
import { unlockCommand } from "./unlock-command.js";

/** Option values as the parser hands them over: each name is one of the command's options. */
interface CommandOptions {
  readonly config?: string;
  readonly force?: boolean;
  readonly "dry-run"?: boolean;
  readonly quiet?: boolean;
  readonly host?: string;
  readonly email?: string;
  readonly upstream?: string;
  readonly tunnel?: string;
  readonly "server-name"?: string;
  readonly prefix?: string;
  readonly json?: boolean;
  readonly all?: boolean;
  readonly man?: boolean;
  readonly "bash-completion"?: boolean;
}

type Run = (configPath: string, options: CommandOptions, deps: CliDeps, args: readonly string[]) => Promise<ExitCode>;

/** Every command: the parser, --help, the man page and the bash completion all come from here. */
export const COMMANDS: readonly CommandSpec<Run>[] = [
  {
    name: "init",
    summary: "write a commented gateway.yaml: asks on a terminal, or takes the answers as options",
    options: [
      { ...CONFIG_OPTION, help: "where to write it (default ./gateway.yaml)" },
      { name: "host", value: "NAME", help: "the public DNS name (or IP address) of the notebook" },
      { name: "email", value: "EMAIL", help: "contact for Let's Encrypt (optional)" },
      { name: "upstream", value: "URL", help: "where the notebook listens, http://HOST:PORT (default http://127.0.0.1:8888)" },
      { name: "tunnel", value: "USER@HOST", help: "keep ssh -N -L to this workstation up, as for ssh ([user@]host)" },
      { name: "force", help: "replace an existing file" },
    ],
    run: (configPath, o, deps) => initCommand({ configPath, host: o.host, email: o.email, upstream: o.upstream, tunnel: o.tunnel, force: o.force ?? false }, deps),
  },
  {
    name: "serve",
    summary: "run the gateway (HTTPS proxy to the notebook, HTTP redirect)",
    details: "SIGHUP reloads gateway.yaml and certificates; SIGTERM drains and exits 0.",
    options: [CONFIG_OPTION],
    run: (path, _o, deps) => serveCommand(path, deps),
  },
  {
    name: "renew",
    summary: "for cron: renew the certificates that are due",
    details: "Exit 1 when a certificate that was due could not be renewed. A running serve picks the new files up by itself.",
    options: [
      CONFIG_OPTION,
      { name: "force", help: "renew even when not due" },
      { name: "dry-run", help: "order for real (Let's Encrypt staging), install nothing" },
      { name: "quiet", short: "q", help: "print only what was renewed or failed" },
    ],
    run: (configPath, o, deps) => renewCommand({ configPath, force: o.force ?? false, dryRun: o["dry-run"] ?? false, quiet: o.quiet ?? false }, deps),
  },
  {
    name: "check",
    summary: "validate the config and run the preflight; changes nothing",
    options: [CONFIG_OPTION],
    run: (path, _o, deps) => checkCommand(path, deps),
  },
  {
    name: "status",
    summary: "certificates, tunnels, upstreams: expiry, next renewal, last error, state",
    details:
      "Exits as a Nagios plugin: 0 OK; 1 warning (renewal failing, certificate expiring within 7 days, tunnel\n" +
      "reconnecting, notebook not reachable); 2 critical (certificate expired or missing, tunnel down, notebook\n" +
      "without a password).",
    options: [CONFIG_OPTION, { name: "json", help: "print one JSON document (snake_case keys) instead of text" }],
    run: (configPath, o, deps) => statusCommand({ configPath, json: o.json ?? false }, deps),
  },
  {
    name: "healthz",
    summary: "ask the running serve of this config for /healthz on its admin endpoint: exit 0 when it answers 200",
    details: "For a container's HEALTHCHECK or a monitoring probe; reads the admin address from gateway.yaml.",
    options: [CONFIG_OPTION],
    run: (path, _o, deps) => healthzCommand(path, deps),
  },
  {
    name: "unlock",
    synopsis: "ADDRESS | --all",
    summary: "lift the login lock-out of a client address (or of all, with --all) before its window ends",
    details: "A running serve applies it within about a second (guard.login_unlocked in its log); no restart or SIGHUP.",
    options: [CONFIG_OPTION, { name: "all", help: "unlock every address, and the site-wide lock-out (max_failures_total)" }],
    run: (configPath, o, deps, args) => unlockCommand({ configPath, addresses: args, all: o.all ?? false }, deps),
  },
  {
    name: "trust",
    summary: "trust the local CA of tls: internal on this machine: the system store and the browsers' NSS databases",
    details:
      "Adds it to /usr/local/share/ca-certificates and runs update-ca-certificates (needs root; without it the\n" +
      "system store is skipped and the command to run is printed), and with certutil (libnss3-tools) to ~/.pki/nssdb\n" +
      "(Chromium, Chrome; made if missing) and each Firefox profile. Prints what each store did; exit 1 when a\n" +
      "store could not be changed.",
    options: [CONFIG_OPTION],
    run: (configPath, _o, deps) => trustCommand({ configPath, untrust: false }, deps),
  },
  {
    name: "untrust",
    summary: "remove the local CA from the stores gateway trust added it to; nothing else is touched",
    details: "Finds it by fingerprint; running it again, or on stores without it, changes nothing. Exit 1 when a store could not be changed.",
    options: [CONFIG_OPTION],
    run: (configPath, _o, deps) => trustCommand({ configPath, untrust: true }, deps),
  },
  {
    name: "schema",
    summary: "print gateway.yaml's JSON Schema, for editors (yaml-language-server) to complete and check it",
    options: [],
    run: async (_path, _o, deps) => {
      deps.stdout.write(`${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
      return ExitCode.Ok;
    },
  },
  {
    name: "client-cert",
    synopsis: "add NAME | revoke NAME",
    summary: "client certificates (mutual TLS) as a second factor",
    options: [CONFIG_OPTION],
    run: (path, _o, deps, args) => clientCertCommand(path, args, deps),
  },
  {
    name: "import-nginx",
    synopsis: "FILE",
    summary: "print the gateway.yaml equivalent to an nginx config; warnings on stderr",
    options: [
      { name: "server-name", value: "NAME", help: "the server block to import when there are several" },
      { name: "prefix", short: "p", value: "DIR", help: "nginx's conf folder, for relative include and ssl_certificate paths (default /etc/nginx; a whole nginx.conf given as FILE uses its own folder)" },
    ],
    run: (_path, o, deps, args) => importNginxCommand(args, { serverName: o["server-name"], prefix: o.prefix }, deps),
  },
  {
    name: "export-nginx",
    summary: "print the nginx config (and certbot/cron lines) equivalent to gateway.yaml",
    options: [CONFIG_OPTION],
    run: (path, _o, deps) => exportNginxCommand(path, deps),
  },
  {
    name: "help",
    synopsis: "[COMMAND]",
    summary: "print the usage of gateway or of one command; for packagers, the man page or the bash completion",
    options: [
      { name: "man", help: "print the man page, gateway(1), in roff (packaging/gateway.1)" },
      { name: "bash-completion", help: "print the bash completion script (packaging/gateway.bash-completion)" },
    ],
    run: (_path, o, deps, args) => helpCommand(args, o, deps),
  },
];

async function helpCommand(args: readonly string[], o: CommandOptions, deps: CliDeps): Promise<ExitCode> {
  const [name, extra] = args;
  const command = COMMANDS.find((c) => c.name === name);
  if (extra !== undefined || (name !== undefined && !command)) {
    deps.stderr.write(`gateway help: ${extra !== undefined ? `unexpected argument ${JSON.stringify(extra)}` : `unknown command ${JSON.stringify(name)}`}; see gateway --help\n`);
    return ExitCode.Usage;
  }
  if (o.man) deps.stdout.write(renderManPage(COMMANDS, packageVersion()));
  else if (o["bash-completion"]) deps.stdout.write(renderBashCompletion(COMMANDS));
  else deps.stdout.write(command ? formatCommandHelp(command) : formatUsage(COMMANDS));
  return ExitCode.Ok;
}

/** Parses argv (without node and script) and runs the command; returns the exit code. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<ExitCode> {
  const line = parseCommandLine(argv, COMMANDS);
  switch (line.kind) {
    case "usage-error":
      deps.stderr.write(line.message);
      return ExitCode.Usage;
    case "help":
      deps.stdout.write(line.text);
      return ExitCode.Ok;
    case "version":
      deps.stdout.write(`gateway ${packageVersion()}\n`);
      return ExitCode.Ok;
    case "run":
      // The parser gives each of the command's options the type its spec declares.
      return line.command.run((line.options.config as string | undefined) ?? "gateway.yaml", line.options as CommandOptions, deps, line.args);
  }
}
