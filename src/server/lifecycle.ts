import type { Server } from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { GatewayError } from "../platform/gateway-error.js";
import { describePortHolder, findPortHolder } from "../platform/port-holder.js";

/** Binds `server`; returns the port it got (useful with port 0). Errors say how to fix them. */
export async function listen(server: Server, port: number, address: string, key: string): Promise<number> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const where = `${address}:${port}`;
    if (code === "EADDRINUSE") {
      const holder = findPortHolder(port);
      throw new GatewayError("listen.in_use", `cannot listen on ${where}: the port is in use${holder ? ` by ${describePortHolder(holder)}` : ""}; stop the other server or change ${key} in gateway.yaml`, { cause });
    }
    if (code === "EACCES") throw new GatewayError("listen.denied", `cannot listen on ${where}: permission denied (ports below 1024 need a privilege); run as root, grant CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")", or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit), or use a port above 1023`, { cause });
    if (code === "EADDRNOTAVAIL") throw new GatewayError("listen.no_address", `cannot listen on ${where}: this machine has no such address; fix listen.address in gateway.yaml`, { cause });
    throw new GatewayError("listen.failed", `cannot listen on ${where}`, { cause });
  }
  return (server.address() as AddressInfo).port;
}

/** The closing half of an http(s) server: what `drain` needs. */
interface HttpServerLike extends Server {
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

/**
 * Stops accepting, lets in-flight requests finish for up to `drainMs`, then closes what is left,
 * including upgraded sockets (WebSockets), which the HTTP server no longer tracks.
 */
export async function drain(server: HttpServerLike, upgraded: Set<Duplex>, drainMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  for (const socket of upgraded) socket.destroy();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainMs);
  });
  await Promise.race([closed, deadline]);
  clearTimeout(timer);
  server.closeAllConnections();
  await closed;
}
