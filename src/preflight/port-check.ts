import { existsSync, realpathSync } from "node:fs";
import { createServer } from "node:net";
import { basename, resolve } from "node:path";
import { GatewayError } from "../platform/gateway-error.js";
import type { SiteConfig, TunnelConfig } from "../config/gateway-config.js";
import { describePortHolder, findPortHolder, readProcess, type ProcessInfo } from "../platform/port-holder.js";
import { listen } from "../server/lifecycle.js";
import { localForward, tunnelLocalPort } from "../tunnel/ssh-tunnel.js";
import type { Finding } from "./finding.js";

/** A port the gateway will bind, and where it comes from. */
export interface PortUse {
  readonly address: string;
  readonly port: number;
  /** The setting, as serve's listen error names it: listen.https, listen.http, admin. */
  readonly key: string;
  /** Prefix naming where it is set ("gateway.yaml:3:10: "). */
  readonly at: string;
}

/** How check recognises the gateway serve of its own config, which may hold its ports. */
export interface OwnServe {
  /** The config file, absolute. */
  readonly configFile: string;
  /** Whether the admin endpoint of this config answers for its sites: the fallback when /proc hides the holder. */
  readonly adminAnswers: () => Promise<boolean>;
}

/**
 * Whether this process can bind `use` now, tried as serve binds it (and with serve's own error
 * messages: permission, in use with its holder, no such address). A port held by the running
 * serve of the same config is fine. Port 0 (any free port) needs no check.
 */
/** Installed by the .deb (packaging/notebook-gateway.service). */
const PACKAGED_UNIT = "/lib/systemd/system/notebook-gateway.service";

export async function checkPort(use: PortUse, own?: OwnServe): Promise<Finding> {
  const where = `${use.address}:${use.port}`;
  if (use.port === 0) return { level: "ok", text: `${use.key} ${where}: any free port` };
  const server = createServer();
  try {
    await listen(server, use.port, use.address, use.key);
    return { level: "ok", text: `${use.key} ${where} can be bound` };
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    if (err.code === "listen.in_use" && own) {
      const holder = findPortHolder(use.port);
      if (holder && isServeOf(holder, own.configFile)) return { level: "ok", text: `${use.key} ${where} is held by the running gateway serve of this config (pid ${holder.pid})` };
      if (holder?.pid === null && (await own.adminAnswers())) return { level: "ok", text: `${use.key} ${where} is in use, presumably by the running gateway serve of this config (its admin endpoint answers for the same sites)` };
    }
    // serve may well get the capability this shell lacks: the packaged unit grants it (AmbientCapabilities).
    if (err.code === "listen.denied" && existsSync(PACKAGED_UNIT)) {
      return { level: "warning", text: `${use.at}${use.key} ${where}: this user cannot bind it from here; ${PACKAGED_UNIT} gives serve the capability (AmbientCapabilities=CAP_NET_BIND_SERVICE), so run serve through it (systemctl start notebook-gateway)` };
    }
    return { level: "problem", text: `${use.at}${err.message}` };
  } finally {
    if (server.listening) await new Promise((done) => server.close(done));
  }
}

/**
 * The tunnel's local end (127.0.0.1:<upstream port>) must be free for serve's ssh: taken, ssh
 * fails "Could not request local forwarding" at every attempt while the gateway proxies to
 * whatever listens there. The running serve's own ssh for this forward holding it is fine.
 */
export async function checkTunnelPort(site: SiteConfig, tunnel: TunnelConfig, own: OwnServe): Promise<Finding> {
  const port = tunnelLocalPort(site);
  const where = `127.0.0.1:${port}`;
  const server = createServer();
  try {
    await listen(server, port, "127.0.0.1", "the upstream port");
    return { level: "ok", text: `${site.hosts[0]}: the tunnel's local end ${where} is free` };
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    if (err.code !== "listen.in_use") return { level: "problem", text: `${site.position}: the tunnel's local end: ${err.message}` };
    const holder = findPortHolder(port);
    const parent = holder?.parentPid ? readProcess(holder.parentPid) : null;
    if (holder && parent && holder.argv.includes(localForward(tunnel, port)) && isServeOf(parent, own.configFile)) {
      return { level: "ok", text: `${site.hosts[0]}: the tunnel's local end ${where} is held by the running gateway serve's ssh (pid ${holder.pid})` };
    }
    if (holder?.pid === null && (await own.adminAnswers())) return { level: "ok", text: `${site.hosts[0]}: the tunnel's local end ${where} is in use, presumably by the running gateway serve's ssh (its admin endpoint answers for the same sites)` };
    return {
      level: "problem",
      text: `${site.position}: the tunnel's local end ${where} is taken${holder ? ` by ${describePortHolder(holder)}` : ""}: serve's ssh would fail "Could not request local forwarding" over and over while the gateway proxies to whatever listens there; stop that, or give the tunnel a free port in upstream: (http://127.0.0.1:<free port>)`,
    };
  } finally {
    if (server.listening) await new Promise((done) => server.close(done));
  }
}

/** Whether `holder` is `gateway serve` (node main.js serve, or the gateway executable) run on `configFile`. */
function isServeOf(holder: ProcessInfo, configFile: string): boolean {
  const serve = holder.argv.indexOf("serve");
  const program = holder.argv[serve - 1];
  if (serve < 1 || !program || !/^(main\.js|gateway)$/.test(basename(program)) || !holder.cwd) return false;
  const rest = holder.argv.slice(serve + 1);
  let config = "gateway.yaml";
  rest.forEach((arg, i) => {
    if ((arg === "--config" || arg === "-c") && rest[i + 1]) config = rest[i + 1] as string;
    else if (arg.startsWith("--config=")) config = arg.slice("--config=".length);
  });
  return samePath(resolve(holder.cwd, config), configFile);
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return a === b;
  }
}
