import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { GLOBAL_OPTIONS } from "./command-line.js";
import { renderManPage } from "./man-page.js";
import { packageVersion } from "./package-version.js";
import { COMMANDS } from "./run-cli.js";

const MAN_PAGE = new URL("../../../packaging/gateway.1", import.meta.url);

describe("packaging/gateway.1", () => {
  const page = readFileSync(MAN_PAGE, "utf8");

  it("is what `gateway help --man` prints from the command table", () => {
    assert.equal(page, renderManPage(COMMANDS, packageVersion()), "regenerate it: npm run packaging-docs");
  });

  it("has a section for every command, listing each of its options", () => {
    const sections = page.split(/^\.SS /m).slice(1);
    const roff = (name: string): string => name.replace(/-/g, "\\-");
    assert.deepEqual(sections.map((s) => /^"gateway (\S+)/.exec(s)?.[1]), COMMANDS.map((c) => roff(c.name)));
    for (const [i, command] of COMMANDS.entries()) {
      for (const option of [...command.options, { name: "help" }]) {
        assert.ok(sections[i]?.includes(`\\fB\\-\\-${roff(option.name)}\\fR`), `gateway ${command.name} --${option.name}`);
      }
    }
    for (const option of GLOBAL_OPTIONS) assert.ok(page.split(".SH COMMANDS")[0]?.includes(`\\-\\-${roff(option.name)}`), `--${option.name}`);
  });
});
