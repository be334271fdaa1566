#!/usr/bin/env node
import { runCli } from "./cli/run-cli.js";

// The only place that touches process: argv, signals, exit.
try {
  const exitCode = await runCli(process.argv.slice(2), {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    onSignal: (signal, handler) => {
      process.on(signal, handler);
      return () => process.off(signal, handler);
    },
  });
  process.exit(exitCode);
} catch (err) {
  // A bug, not a user error: crash loudly with the stack (EX_SOFTWARE).
  console.error(err);
  process.exit(70);
}
