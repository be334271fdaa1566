import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportServerBlocks } from "../../nginx-compat/export-server-block.js";
import { parseConfig } from "../../src/config/load-config.js";
import { startGateway, type GatewayProcess } from "./gateway-process.js";
import { freePort, startProcess, waitForPort, type TestProcess } from "./processes.js";
import { requireTool } from "./tools.js";

export const NGINX = "/usr/sbin/nginx";

/** How many workers, connections per worker, and whether requests are logged (the bench tunes these). */
export interface NginxTuning {
  readonly workers: string;
  readonly workerConnections: number;
  readonly accessLog: boolean;
}

const TEST_TUNING: NginxTuning = { workers: "1", workerConnections: 512, accessLog: true };

/**
 * Writes `<dir>/nginx.conf`: a complete config for `nginx -p dir` (pid, logs and temp paths in
 * dir, foreground, one worker unless tuned) whose http block holds `httpBlock`.
 */
export function writeNginxConf(dir: string, httpBlock: string, tuning: NginxTuning = TEST_TUNING): string {
  requireTool(NGINX, "nginx");
  mkdirSync(join(dir, "logs"), { recursive: true });
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `    ${t}_temp_path ${join(dir, `${t}_temp`)};`).join("\n");
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, [
    "daemon off;",
    ...(process.getuid?.() === 0 ? ["user root;"] : []),
    `worker_processes ${tuning.workers};`,
    `pid ${join(dir, "nginx.pid")};`,
    `error_log ${join(dir, "logs", "error.log")} warn;`,
    `events { worker_connections ${tuning.workerConnections}; }`,
    "http {",
    `    access_log ${tuning.accessLog ? join(dir, "logs", "access.log") : "off"};`,
    temp,
    httpBlock,
    "}",
    "",
  ].join("\n"));
  return conf;
}

/** `nginx -t` on the config: returns nginx's verdict (it writes it on stderr), throws with it when nginx refuses. */
export function testNginxConf(dir: string, conf: string): string {
  const result = spawnSync(NGINX, ["-t", "-p", dir, "-c", conf], { encoding: "utf8" });
  const verdict = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) throw new Error(`nginx -t refused ${conf}: ${verdict}`);
  return verdict;
}

/** Starts real nginx on the config in `dir` and waits until `port` accepts connections. */
export async function startNginx(dir: string, conf: string, port: number): Promise<TestProcess> {
  testNginxConf(dir, conf);
  const proc = startProcess(NGINX, ["-p", dir, "-c", conf]);
  await waitForPort(proc, port);
  return proc;
}

/**
 * The gateway and its twin, each in its own new folder under `dir`: the real gateway on the
 * gateway.yaml that `yaml(0)` makes, and real nginx running `gateway export-nginx`'s output for
 * the same file with nginx's (free) port.
 */
export async function startGatewayAndExportedNginx(dir: string, yaml: (httpsPort: number) => string): Promise<{ gateway: GatewayProcess; nginx: TestProcess; nginxPort: number }> {
  const gatewayDir = join(dir, "gateway");
  const nginxDir = join(dir, "nginx");
  mkdirSync(gatewayDir);
  mkdirSync(nginxDir);
  const gateway = await startGateway(gatewayDir, yaml(0));
  const nginxPort = await freePort();
  const config = parseConfig(yaml(nginxPort), join(nginxDir, "gateway.yaml"), "gateway.yaml");
  return { gateway, nginx: await startNginx(nginxDir, writeNginxConf(nginxDir, exportServerBlocks(config)), nginxPort), nginxPort };
}
