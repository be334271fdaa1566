import { parseArgs } from "node:util";
import type { CliDeps } from "./cli-deps.js";
import { checkCommand } from "./check-command.js";
import { ExitCode } from "./exit-code.js";
import { serveCommand } from "./serve-command.js";

const COMMANDS: Readonly<Record<string, { summary: string; run: (configPath: string, deps: CliDeps) => Promise<ExitCode> }>> = {
  serve: { summary: "run the gateway (HTTPS proxy to the notebook, HTTP redirect)", run: serveCommand },
  check: { summary: "validate the config and run the preflight; changes nothing", run: checkCommand },
};

const USAGE = `usage: gateway <command> [--config FILE]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
  .join("\n")}

options:
  --config FILE   gateway.yaml to use (default ./gateway.yaml)
  --help          this text
`;

/** Parses argv (without node and script) and runs the command; returns the exit code. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<ExitCode> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } } });
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
  if (!command || extra.length > 0) {
    const problem = name === undefined ? "no command given" : command ? `unexpected argument "${extra[0]}"` : `unknown command "${name}"`;
    deps.stderr.write(`gateway: ${problem}\n\n${USAGE}`);
    return ExitCode.Usage;
  }
  return command.run(parsed.values.config ?? "gateway.yaml", deps);
}
