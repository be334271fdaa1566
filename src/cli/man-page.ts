import { commandOptions, commandUsageLine, GLOBAL_OPTIONS, type CommandSpec, type OptionSpec } from "./command-line.js";

/** What the exit codes mean (PRODUCT.md); `gateway status` adds its own in its details. */
const EXIT_STATUS: ReadonlyArray<readonly [number, string]> = [
  [0, "success"],
  [1, "the operation failed (renew: a certificate that was due could not be renewed)"],
  [2, "usage error"],
  [78, "invalid configuration"],
];

/** gateway(1) in roff, from the command table: what `gateway help --man` prints and packaging/gateway.1 holds. */
export function renderManPage(commands: readonly CommandSpec<unknown>[], version: string): string {
  const lines = [
    `.TH GATEWAY 1 "" "notebook-gateway ${version}" "User Commands"`,
    ".SH NAME",
    "gateway \\- TLS gateway that puts a password\\-protected Jupyter notebook on the internet",
    ".SH SYNOPSIS",
    ".B gateway",
    "\\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]",
    ".br",
    ".B gateway",
    "\\fIcommand\\fR \\fB\\-\\-help\\fR",
    ".br",
    ".B gateway \\-\\-version",
    ".SH DESCRIPTION",
    text("One process in front of a Jupyter notebook: HTTPS with certificates it obtains and renews itself (ACME, or a local CA), the notebook's password checked to be there, login attempts throttled, and an SSH tunnel to the workstation kept up when configured. The configuration is gateway.yaml; gateway check validates it."),
    ".SH OPTIONS",
    "These are accepted by every command, before or after its name.",
    ...GLOBAL_OPTIONS.flatMap(option),
    ".SH COMMANDS",
    ...commands.flatMap((c) => [
      `.SS "${text(commandUsageLine(c))}"`,
      text(c.summary),
      ...(c.details ? [".PP", text(c.details)] : []),
      ...commandOptions(c).flatMap(option),
    ]),
    ".SH EXIT STATUS",
    ...EXIT_STATUS.flatMap(([code, meaning]) => [".TP", `.B ${code}`, text(meaning)]),
    ".SH FILES",
    ".TP",
    ".I /etc/gateway/gateway.yaml",
    "the configuration, as systemd and cron run it (the default is ./gateway.yaml)",
    ".TP",
    ".I /var/lib/gateway",
    "storage: account key, certificates, local CA, state (0700)",
    ".SH SEE ALSO",
    ".BR ssh (1),",
    ".BR jupyter (1)",
  ];
  return `${lines.join("\n")}\n`;
}

function option(o: OptionSpec): string[] {
  const names = [...(o.short ? [`-${o.short}`] : []), `--${o.name}`].map((n) => `\\fB${text(n)}\\fR`).join(", ");
  return [".TP", `${names}${o.value ? ` \\fI${text(o.value)}\\fR` : ""}`, text(o.help)];
}

/** Text for roff: backslashes and hyphens escaped, no line starting a request. */
function text(s: string): string {
  return s
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .split("\n")
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join("\n");
}
