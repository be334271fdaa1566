import { execFile } from "node:child_process";
import { GatewayError } from "./gateway-error.js";

/**
 * Runs a system tool to completion and returns its stdout. A tool that is not installed fails
 * with the Debian package that provides it; one that exits non-zero fails with its last words.
 */
export function runTool(path: string, args: readonly string[], aptPackage: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(path, args, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return reject(new GatewayError("tool.missing", `${path} not found; install it: apt-get install ${aptPackage}`, { cause: err }));
      const said = stderr.trim().split("\n").pop()?.trim() || `exit status ${String(code)}`;
      reject(new GatewayError("tool.failed", `${[path, ...args].join(" ")} failed: ${said}`, { cause: err }));
    });
  });
}
