import { readFileSync } from "node:fs";

/**
 * The version in package.json, read when asked: from src/cli/ and from dist/src/cli/ alike,
 * package.json is the nearest one above this module whose name is the gateway's.
 */
export function packageVersion(): string {
  for (let dir = new URL("./", import.meta.url); dir.pathname !== "/"; dir = new URL("../", dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "notebook-gateway" && pkg.version) return pkg.version;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  throw new Error("package.json of notebook-gateway not found above the CLI's module");
}
