import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startGateway } from "../support/gateway-process.js";
import { startNginx, writeNginxConf } from "../support/nginx.js";
import { freePort, startProcess, waitForPort, type TestProcess } from "../support/processes.js";
import { requireTool } from "../support/tools.js";

/** What every system is started with: the same certificate, in front of the same upstream. */
export interface BenchContext {
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly upstreamHttpPort: number;
  /** The upstream serving HTTPS itself: the "Node directly" reference. */
  readonly upstreamHttpsPort: number;
  readonly upstreamPid: number;
}

/** A system under test, running: its HTTPS port and the PID whose process tree is measured. */
export interface Running {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface BenchSystem {
  readonly name: string;
  start(ctx: BenchContext): Promise<Running>;
  /**
   * The same system set up to use every core, for the all-cores rows; absent where start()
   * already does (nginx's worker_processes auto, Caddy's goroutines) or cannot (CHP, one process).
   */
  startAllCores?(ctx: BenchContext): Promise<Running>;
}

const CHP_MAIN = fileURLToPath(new URL("../../../node_modules/configurable-http-proxy/bin/configurable-http-proxy", import.meta.url));

/** The gateway as built in this tree, or (`main`) another build of it, e.g. the one before a change. */
export function gatewaySystem(name: string, main?: string): BenchSystem {
  const start = async (ctx: BenchContext, label: string, extraYaml: string): Promise<Running> => {
    const gateway = await startGateway(subdir(ctx, label), `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
${extraYaml}sites:
  - host: localhost
    upstream: http://127.0.0.1:${ctx.upstreamHttpPort}
    tls: { cert: ${ctx.certPath}, key: ${ctx.keyPath} }
`, {}, main);
    return { port: gateway.httpsPort, pid: gateway.process.pid, stop: () => gateway.stop() };
  };
  return {
    name,
    start: (ctx) => start(ctx, name, ""),
    // Another build may predate `workers:`; only this tree's gateway gets the all-cores run.
    ...(main ? {} : { startAllCores: (ctx: BenchContext) => start(ctx, `${name}-workers`, "workers: auto\n") }),
  };
}

export const GATEWAY = gatewaySystem("gateway");

/**
 * The seed recipe's server block on loopback, plus what a tuned nginx has: upstream keepalive, a
 * worker per core, HTTP/2. `Host $http_host` where Jupyter's nginx recipes write `$host`: the same
 * on port 443, but on any other port `$host` drops the port, and Jupyter, which compares Origin
 * with Host, then refuses the login form (checked with the page-load bench).
 */
export const NGINX: BenchSystem = {
  name: "nginx",
  async start(ctx) {
    const dir = subdir(ctx, "nginx");
    const port = await freePort();
    const conf = writeNginxConf(dir, `
  upstream notebook { server 127.0.0.1:${ctx.upstreamHttpPort}; keepalive 64; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    # Its default (1000 requests, then GOAWAY) fails h2load's in-flight streams, which it does not retry.
    keepalive_requests 1000000;
    server_name localhost;
    ssl_certificate ${ctx.certPath};
    ssl_certificate_key ${ctx.keyPath};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_timeout 1d;
    ssl_session_cache shared:SSL:50m;
    add_header Strict-Transport-Security max-age=15768000;
    client_max_body_size 0;
    location / {
      proxy_pass http://notebook;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_read_timeout 1d;
    }
  }
`, { workers: "auto", workerConnections: 4096, accessLog: false });
    const proc = await startNginx(dir, conf, port);
    return running(proc, port);
  },
};

export const CADDY: BenchSystem = {
  name: "caddy",
  async start(ctx) {
    const caddy = requireTool("/usr/bin/caddy", "caddy");
    const dir = subdir(ctx, "caddy");
    const port = await freePort();
    const caddyfile = join(dir, "Caddyfile");
    writeFileSync(caddyfile, `{
  admin off
  auto_https off
  default_sni localhost
  storage file_system ${join(dir, "data")}
}
https://localhost:${port} {
  bind 127.0.0.1
  tls ${ctx.certPath} ${ctx.keyPath}
  reverse_proxy 127.0.0.1:${ctx.upstreamHttpPort}
}
`);
    const proc = startProcess(caddy, ["run", "--config", caddyfile, "--adapter", "caddyfile"], { env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir } });
    await waitForPort(proc, port);
    return running(proc, port);
  },
};

export const CHP: BenchSystem = {
  name: "configurable-http-proxy",
  async start(ctx) {
    const [port, apiPort] = [await freePort(), await freePort()];
    const proc = startProcess(process.execPath, [CHP_MAIN, "--ip", "127.0.0.1", "--port", String(port), "--api-ip", "127.0.0.1", "--api-port", String(apiPort), "--default-target", `http://127.0.0.1:${ctx.upstreamHttpPort}`, "--ssl-key", ctx.keyPath, "--ssl-cert", ctx.certPath, "--log-level", "warn"], {
      env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: randomBytes(16).toString("hex") },
    });
    await waitForPort(proc, port);
    return running(proc, port);
  },
};

/** The upstream's own HTTPS listener: what Node does with no proxy in between (a reference, not a peer). */
export const DIRECT: BenchSystem = {
  name: "node-direct",
  async start(ctx) {
    return { port: ctx.upstreamHttpsPort, pid: ctx.upstreamPid, stop: async () => undefined };
  },
};

function subdir(ctx: BenchContext, name: string): string {
  const dir = join(ctx.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function running(proc: TestProcess, port: number): Running {
  return { port, pid: proc.pid, stop: () => proc.stop() };
}
