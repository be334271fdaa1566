import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCommandLine, type CommandSpec } from "./command-line.js";

const COMMANDS: CommandSpec<null>[] = [
  { name: "serve", summary: "run it", options: [{ name: "config", short: "c", value: "FILE", help: "the config" }], run: null },
  { name: "renew", summary: "renew", options: [{ name: "force", help: "anyway" }, { name: "quiet", short: "q", help: "hush" }], run: null },
  { name: "import-nginx", synopsis: "FILE", summary: "import", options: [{ name: "prefix", short: "p", value: "DIR", help: "conf folder" }], run: null },
];

/** What each command line gives, in short: the command and its options, or the text printed. */
function outcome(argv: string[]): unknown {
  const line = parseCommandLine(argv, COMMANDS);
  switch (line.kind) {
    case "run":
      return { run: line.command.name, options: line.options, args: line.args };
    case "help":
      return { help: line.text.split("\n")[0] };
    case "version":
      return "version";
    case "usage-error":
      return { error: line.message.split("\n")[0] };
  }
}

describe("parseCommandLine", () => {
  const cases: Array<[string[], unknown]> = [
    [["serve"], { run: "serve", options: {}, args: [] }],
    [["serve", "--config", "a.yaml"], { run: "serve", options: { config: "a.yaml" }, args: [] }],
    [["serve", "--config=a.yaml"], { run: "serve", options: { config: "a.yaml" }, args: [] }],
    [["--config", "a.yaml", "renew", "-q", "--force"], { run: "renew", options: { config: "a.yaml", quiet: true, force: true }, args: [] }],
    [["renew", "-c", "b.yaml"], { run: "renew", options: { config: "b.yaml" }, args: [] }],
    [["import-nginx", "-p", "/etc/nginx", "nginx.conf"], { run: "import-nginx", options: { prefix: "/etc/nginx" }, args: ["nginx.conf"] }],
    [["import-nginx", "--", "-odd.conf"], { run: "import-nginx", options: {}, args: ["-odd.conf"] }],
    [["--version"], "version"],
    [["-V"], "version"],
    [["renew", "--version"], "version"],
    [["--help"], { help: "usage: gateway <command> [options]" }],
    [["serve", "--help"], { help: "usage: gateway serve [options]" }],
    [["--help", "import-nginx"], { help: "usage: gateway import-nginx [options] FILE" }],
    [["renew", "-h", "--bogus"], { error: "gateway renew: unknown option --bogus; see gateway renew --help" }],
    [["serve", "--foo"], { error: "gateway serve: unknown option --foo; see gateway serve --help" }],
    [["serve", "-x"], { error: "gateway serve: unknown option -x; see gateway serve --help" }],
    [["serve", "--force"], { error: "gateway serve: unknown option --force; see gateway serve --help" }],
    [["--force", "renew"], { error: "gateway: unknown option --force; see gateway --help" }],
    [["serve", "--config"], { error: "gateway serve: --config needs a value (FILE); see gateway serve --help" }],
    [["serve", "--config", "--help"], { error: "gateway serve: --config needs a value (FILE); see gateway serve --help" }],
    [["serve", "--config="], { error: "gateway serve: --config needs a value (FILE); see gateway serve --help" }],
    [["import-nginx", "-p"], { error: "gateway import-nginx: -p needs a value (DIR); see gateway import-nginx --help" }],
    [["renew", "--force=yes"], { error: "gateway renew: --force takes no value; see gateway renew --help" }],
    [["serve", "extra"], { error: 'gateway serve: unexpected argument "extra"; see gateway serve --help' }],
    [["frobnicate"], { error: 'gateway: unknown command "frobnicate"' }],
    [[], { error: "gateway: no command given" }],
  ];
  for (const [argv, expected] of cases) {
    it(`gateway ${argv.join(" ")}`, () => assert.deepEqual(outcome(argv), expected));
  }
});
