import { PassThrough } from "node:stream";
import type { CliDeps } from "../../src/cli/cli-deps.js";

/**
 * Runs a command in this process with stdout and stderr captured (no terminal on stdin): for
 * commands whose outside world a test must inject, such as the DNS server `check` and `init` ask.
 */
export async function runInProcess(command: (deps: CliDeps) => Promise<number>): Promise<{ code: number; out: string; ms: number }> {
  const output = new PassThrough();
  let out = "";
  output.on("data", (d: Buffer) => (out += d.toString()));
  const started = performance.now();
  const code = await command({ stdin: new PassThrough(), stdout: output, stderr: output, onSignal: () => () => undefined });
  return { code, out, ms: Math.round(performance.now() - started) };
}
