import { parseArgs } from "node:util";
import { gatewayJsonSchema } from "../config/gateway-yaml-schema.js";
import type { CliDeps } from "./cli-deps.js";
import { checkCommand } from "./check-command.js";
import { clientCertCommand } from "./client-cert-command.js";
import { initCommand } from "./init-command.js";
import { exportNginxCommand, importNginxCommand } from "./nginx-compat-command.js";
import { ExitCode } from "./exit-code.js";
import { renewCommand } from "./renew-command.js";
import { serveCommand } from "./serve-command.js";
import { statusCommand } from "./status-command.js";

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
}

interface Command {
  readonly summary: string;
  /** Positional arguments after the command name it accepts (most take none). */
  readonly takesArguments?: boolean;
  run(configPath: string, options: CommandOptions, deps: CliDeps, args: readonly string[]): Promise<ExitCode>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  init: {
    summary: "write a commented gateway.yaml: asks, or --host --email --upstream --tunnel [--force]",
    run: (configPath, o, deps) => initCommand({ configPath, host: o.host, email: o.email, upstream: o.upstream, tunnel: o.tunnel, force: o.force ?? false }, deps),
  },
  serve: { summary: "run the gateway (HTTPS proxy to the notebook, HTTP redirect)", run: (path, _o, deps) => serveCommand(path, deps) },
  renew: {
    summary: "for cron: renew the certificates that are due [--force] [--dry-run] [--quiet]",
    run: (configPath, o, deps) => renewCommand({ configPath, force: o.force ?? false, dryRun: o["dry-run"] ?? false, quiet: o.quiet ?? false }, deps),
  },
  check: { summary: "validate the config and run the preflight; changes nothing", run: (path, _o, deps) => checkCommand(path, deps) },
  status: { summary: "certificates, tunnels, upstreams: expiry, next renewal, last error, state", run: (path, _o, deps) => statusCommand(path, deps) },
  schema: {
    summary: "print gateway.yaml's JSON Schema, for editors (yaml-language-server) to complete and check it",
    run: async (_path, _o, deps) => {
      deps.stdout.write(`${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
      return ExitCode.Ok;
    },
  },
  "client-cert": {
    summary: "add NAME | revoke NAME: client certificates (mutual TLS) as a second factor",
    takesArguments: true,
    run: (path, _o, deps, args) => clientCertCommand(path, args, deps),
  },
  "import-nginx": {
    summary: "FILE [--server-name NAME] [--prefix DIR]: print the gateway.yaml equivalent to an nginx config; warnings on stderr",
    takesArguments: true,
    run: (_path, o, deps, args) => importNginxCommand(args, { serverName: o["server-name"], prefix: o.prefix }, deps),
  },
  "export-nginx": { summary: "print the nginx config (and certbot/cron lines) equivalent to gateway.yaml", run: (path, _o, deps) => exportNginxCommand(path, deps) },
};

const USAGE = `usage: gateway <command> [--config FILE]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
  .join("\n")}

options:
  --config FILE   gateway.yaml to use (default ./gateway.yaml)
  --force         renew: renew even when not due; init: replace an existing file
  --dry-run       renew: order for real (Let's Encrypt staging), install nothing
  --quiet         renew: print only what was renewed or failed
  --server-name NAME  import-nginx: the server block to import when there are several
  -p, --prefix DIR    import-nginx: the folder of nginx.conf, for relative include and ssl_certificate paths
                      (default /etc/nginx; a whole nginx.conf given as FILE uses its own folder, as nginx does)
  --help          this text
`;

/** Parses argv (without node and script) and runs the command; returns the exit code. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<ExitCode> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        force: { type: "boolean" },
        "dry-run": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        host: { type: "string" },
        email: { type: "string" },
        upstream: { type: "string" },
        tunnel: { type: "string" },
        "server-name": { type: "string" },
        prefix: { type: "string", short: "p" },
      },
    });
  } catch (err) {
    deps.stderr.write(`gateway: ${(err as Error).message}\n\n${USAGE}`);
    return ExitCode.Usage;
  }
  const [name, ...extra] = parsed.positionals;
  if (parsed.values.help) {
    deps.stdout.write(USAGE);
    return ExitCode.Ok;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command || (extra.length > 0 && !command.takesArguments)) {
    const problem = name === undefined ? "no command given" : command ? `unexpected argument "${extra[0]}"` : `unknown command "${name}"`;
    deps.stderr.write(`gateway: ${problem}\n\n${USAGE}`);
    return ExitCode.Usage;
  }
  return command.run(parsed.values.config ?? "gateway.yaml", parsed.values, deps, extra);
}
