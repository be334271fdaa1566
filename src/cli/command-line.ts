/**
 * The command table's shape and everything derived from it: argv parsing, the global usage and
 * each command's --help. The man page and the bash completion (man-page.ts, bash-completion.ts)
 * are rendered from the same table, so none of them can list an option the parser does not know.
 */

/** One option a command takes. */
export interface OptionSpec {
  /** The long name, without the leading --. */
  readonly name: string;
  /** One letter for -x, if the option has a short form. */
  readonly short?: string;
  /** Placeholder of the value it takes (FILE, NAME, DIR); absent for a flag. */
  readonly value?: string;
  readonly help: string;
}

/** One `gateway` command: what it is called, what it takes, what it does. */
export interface CommandSpec<Run> {
  readonly name: string;
  /** Its positional arguments as usage shows them (e.g. "FILE"); absent when it takes none. */
  readonly synopsis?: string;
  /** One line for the command list. */
  readonly summary: string;
  /** More lines for its --help and the man page: exit codes, how it reaches a running gateway. */
  readonly details?: string;
  /** Its options, besides the global ones (--config where it reads gateway.yaml is listed here too). */
  readonly options: readonly OptionSpec[];
  readonly run: Run;
}

export const CONFIG_OPTION: OptionSpec = { name: "config", short: "c", value: "FILE", help: "gateway.yaml to use (default ./gateway.yaml)" };
const HELP_OPTION: OptionSpec = { name: "help", short: "h", help: "print this help and exit" };
const VERSION_OPTION: OptionSpec = { name: "version", short: "V", help: "print the version and exit" };
/**
 * Accepted by every command, before or after its name. --config too, as PRODUCT.md promises
 * ("every command takes --config FILE"), though only commands that read it list it.
 */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [CONFIG_OPTION, HELP_OPTION, VERSION_OPTION];

/** Option values by long name: a string for options with a value, true for flags given. */
export type OptionValues = Readonly<Record<string, string | true>>;

/** What the command line asks for. */
export type CommandLine<Run> =
  | { readonly kind: "run"; readonly command: CommandSpec<Run>; readonly options: OptionValues; readonly args: readonly string[] }
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "version" }
  /** A usage error, in the gateway's words, ready to print (exit 2). */
  | { readonly kind: "usage-error"; readonly message: string };

/**
 * Parses `gateway [global options] COMMAND [options] [ARGS]`. Long options take their value
 * as `--name VALUE` or `--name=VALUE`; short ones as `-x VALUE`. `--` ends the options.
 */
export function parseCommandLine<Run>(argv: readonly string[], commands: readonly CommandSpec<Run>[]): CommandLine<Run> {
  const options: Record<string, string | true> = {};
  const positionals: string[] = [];
  let command: CommandSpec<Run> | undefined;
  const who = (): string => (command ? `gateway ${command.name}` : "gateway");
  const usageError = (problem: string): CommandLine<Run> => ({ kind: "usage-error", message: `${who()}: ${problem}; see ${who()} --help\n` });

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (command) positionals.push(arg);
      else {
        command = commands.find((c) => c.name === arg);
        if (!command) return { kind: "usage-error", message: `gateway: unknown command ${JSON.stringify(arg)}\n\n${formatUsage(commands)}` };
      }
      continue;
    }
    const known = [...GLOBAL_OPTIONS, ...(command?.options ?? [])];
    const long = arg.startsWith("--");
    const [written = "", inline] = long ? splitOnce(arg.slice(2), "=") : [arg.slice(1), undefined];
    const spec = known.find((o) => (long ? o.name === written : o.short === written));
    if (!spec) return usageError(`unknown option ${long ? `--${written}` : arg}`);
    if (spec.value === undefined) {
      if (inline !== undefined) return usageError(`--${spec.name} takes no value`);
      options[spec.name] = true;
      continue;
    }
    const next = argv[i + 1];
    const value = inline ?? (next !== undefined && !next.startsWith("-") ? next : undefined);
    if (value === undefined || value === "") return usageError(`${long ? `--${spec.name}` : arg} needs a value (${spec.value})`);
    if (inline === undefined) i++;
    options[spec.name] = value;
  }

  if (options.help) return { kind: "help", text: command ? formatCommandHelp(command) : formatUsage(commands) };
  if (options.version) return { kind: "version" };
  if (!command) return { kind: "usage-error", message: `gateway: no command given\n\n${formatUsage(commands)}` };
  if (positionals.length > 0 && command.synopsis === undefined) return usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  return { kind: "run", command, options, args: positionals };
}

/** The global usage: every command with its summary, and the global options. */
export function formatUsage(commands: readonly CommandSpec<unknown>[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: gateway <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "options:",
    ...formatOptions(GLOBAL_OPTIONS),
    "",
    "Run gateway <command> --help for a command's arguments and options.",
    "",
  ].join("\n");
}

/** One command's --help: usage line, what it does, its options. */
export function formatCommandHelp(command: CommandSpec<unknown>): string {
  return [
    `usage: ${commandUsageLine(command)}`,
    "",
    command.summary,
    ...(command.details ? ["", command.details] : []),
    "",
    "options:",
    ...formatOptions(commandOptions(command)),
    "",
  ].join("\n");
}

/** `gateway NAME [options] ARGS`. */
export function commandUsageLine(command: CommandSpec<unknown>): string {
  return `gateway ${command.name} [options]${command.synopsis ? ` ${command.synopsis}` : ""}`;
}

/** The options a command lists: its own, then --help. */
export function commandOptions(command: CommandSpec<unknown>): readonly OptionSpec[] {
  return [...command.options, HELP_OPTION];
}

/** `-c, --config FILE`. */
function optionLabel(option: OptionSpec): string {
  return `${option.short ? `-${option.short}, ` : "    "}--${option.name}${option.value ? ` ${option.value}` : ""}`;
}

function formatOptions(options: readonly OptionSpec[]): string[] {
  const width = Math.max(...options.map((o) => optionLabel(o).length));
  return options.map((o) => `  ${optionLabel(o).padEnd(width)}  ${o.help}`);
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}
