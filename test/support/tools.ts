import { accessSync, constants } from "node:fs";

/**
 * Fails (never skips) when a component the tests run for real is missing, naming the Debian
 * package that provides it.
 */
export function requireTool(path: string, aptPackage: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`${path} not found; install it with: apt-get install -y ${aptPackage}`);
  }
}
