import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { renderBashCompletion } from "./bash-completion.js";
import { commandOptions, GLOBAL_OPTIONS } from "./command-line.js";
import { COMMANDS } from "./run-cli.js";

const SCRIPT = fileURLToPath(new URL("../../../packaging/gateway.bash-completion", import.meta.url));

/** What bash offers for `gateway <words><TAB>`, the last word being the one completed. */
function complete(...words: string[]): string[] {
  const line = ["gateway", ...words].map((w) => `'${w}'`).join(" ");
  const out = execFileSync("bash", ["-c", `source '${SCRIPT}'; COMP_WORDS=(${line}); COMP_CWORD=${words.length}; _gateway 2>/dev/null; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" });
  return out.split("\n").filter(Boolean);
}

describe("packaging/gateway.bash-completion", () => {
  it("is what `gateway help --bash-completion` prints from the command table", () => {
    assert.equal(readFileSync(SCRIPT, "utf8"), renderBashCompletion(COMMANDS), "regenerate it: npm run packaging-docs");
  });

  it("completes every command, and every option of each command", () => {
    assert.deepEqual(complete(""), COMMANDS.map((c) => c.name));
    assert.deepEqual(complete("-"), GLOBAL_OPTIONS.flatMap((o) => [`-${o.short}`, `--${o.name}`]));
    for (const command of COMMANDS) {
      assert.deepEqual(complete(command.name, "--"), commandOptions(command).map((o) => `--${o.name}`), command.name);
    }
  });

  it("skips option values to find the command, and completes arguments", () => {
    assert.deepEqual(complete("--config", "gateway.yaml", "renew", "--q"), ["--quiet"]);
    assert.deepEqual(complete("client-cert", "re"), ["revoke"]);
    assert.deepEqual(complete("init", "--host", ""), [], "no guessing a host name");
  });
});
