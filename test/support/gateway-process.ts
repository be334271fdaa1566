import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn, type SpawnOptions } from "node:child_process";
import { assertSchemaValid } from "./gateway-schema.js";
import { startProcess, waitFor, type TestProcess } from "./processes.js";

/** The built CLI, as a user runs it. */
export const GATEWAY_MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));

export interface GatewayProcess {
  readonly process: TestProcess;
  readonly httpsPort: number;
  readonly httpPort: number | null;
  /** The admin endpoint's port, when the config has `admin: 127.0.0.1:0`. */
  readonly adminPort: number | null;
  readonly configPath: string;
  /** Parsed JSON log lines so far. */
  events(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Writes `yaml` to `<dir>/gateway.yaml`, runs `gateway serve` on it, waits for the ready line.
 * Every config a test serves must also pass the JSON Schema users' editors check it against.
 * `main` is another build's main.js (the bench compares two builds of the gateway in one run).
 */
export async function startGateway(dir: string, yaml: string, env: Record<string, string> = {}, main = GATEWAY_MAIN): Promise<GatewayProcess> {
  assertSchemaValid(yaml);
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, yaml);
  const proc = startProcess(process.execPath, [main, "serve", "--config", configPath], { env: { ...process.env, ...env } });
  const events = (): Array<Record<string, unknown>> =>
    proc
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const ready = await waitFor(`gateway ready line (output: ${proc.output().slice(-800)})`, () => {
    if (proc.child.exitCode !== null) throw new Error(`gateway exited ${proc.child.exitCode}: ${proc.output()}`);
    return events().find((e) => e.event === "gateway.ready");
  }, 20_000);
  return {
    process: proc,
    httpsPort: ready.https as number,
    httpPort: (ready.http as number | null) ?? null,
    adminPort: (ready.admin as number | null) ?? null,
    configPath,
    events,
    stop: () => proc.stop(),
  };
}

/** A site served with certificate files, as the e2e tests configure them. */
export interface FileSite {
  readonly host: string;
  readonly upstreamPort: number;
  readonly certPath: string;
  readonly keyPath: string;
}

/**
 * gateway.yaml for tests: loopback, ports picked by the OS, storage in the test's folder.
 * `admin` serves the admin endpoint on a port the OS picks; `extraYaml` adds top-level keys.
 */
export function testConfigYaml(sites: readonly FileSite[], options: { admin?: boolean; extraYaml?: string } = {}): string {
  const siteLines = sites.map((s) => `  - host: ${s.host}\n    upstream: http://127.0.0.1:${s.upstreamPort}\n    tls: { cert: ${s.certPath}, key: ${s.keyPath} }\n`);
  const admin = options.admin ? "127.0.0.1:0" : "false";
  return `listen: { address: 127.0.0.1, https: 0, http: 0 }\nstorage: ./storage\nadmin: ${admin}\n${options.extraYaml ?? ""}sites:\n${siteLines.join("")}`;
}

/**
 * Runs a gateway command to completion: one-shot ones (check, renew, status), or serve when it is
 * expected to fail at start. `as` runs it as another user (a real uid/gid, e.g. 65534 nobody).
 */
export function runGateway(args: readonly string[], env: Record<string, string> = {}, as: Pick<SpawnOptions, "uid" | "gid"> = {}): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [GATEWAY_MAIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], ...as });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr, ms: performance.now() - started })));
}

/** The JSON log lines of `event` in a gateway's output (stderr of renew, stdout of serve), parsed. */
export function loggedEvents(output: string, event: string): Array<Record<string, unknown>> {
  return output.split("\n").filter((l) => l.startsWith("{") && l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}
