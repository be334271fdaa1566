import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SystemTrustStoreLocation } from "../../src/tls/system-trust-store.js";

/**
 * A fake at the unit's edge, so no test changes this machine's trust: a folder stands in for
 * /usr/local/share/ca-certificates, and a script that records its arguments (and then runs
 * `updateScript`) for update-ca-certificates.
 */
export function fakeSystemTrustStore(root: string, updateScript = "true"): { location: SystemTrustStoreLocation; calls: () => string[] } {
  const dir = join(root, "ca-certificates");
  mkdirSync(dir, { recursive: true });
  const update = join(root, "update-ca-certificates");
  writeFileSync(update, `#!/bin/sh\necho "$*" >> "$(dirname "$0")/calls"\n${updateScript}\n`);
  chmodSync(update, 0o755);
  const calls = (): string[] => (existsSync(join(root, "calls")) ? readFileSync(join(root, "calls"), "utf8").trim().split("\n") : []);
  return { location: { dir, updateCommand: [update, "--fresh"] }, calls };
}
