#!/usr/bin/env node
import { runCli } from "./cli/run-cli.js";
import { reportCrash } from "./platform/crash-report.js";

// The only place that touches process: argv, signals, exit.
// A bug that escapes (an error or a rejection nobody owned) ends the process with exit 70, after
// one gateway.crashed line on stdout. stdout is written synchronously for files and pipes on Linux,
// so the line is out before the exit.
const crash = (err: unknown, origin: string): void => reportCrash(err, origin, process.stdout, (code) => process.exit(code));
process.on("uncaughtException", crash);
process.on("unhandledRejection", (reason) => crash(reason, "unhandledRejection"));
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
  // A bug, not a user error (those come back as exit codes): crash with the stack.
  crash(err, "command");
}
