import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP, connect } from "node:net";
import type { DnsServer } from "../../config/gateway-config.js";
import { GatewayError } from "../../platform/gateway-error.js";

/** How long one UDP try, and the TCP exchange after it, wait for an answer. */
const UDP_TIMEOUT_MS = 2_000;
const TCP_TIMEOUT_MS = 5_000;

/** "192.0.2.53:53", "[2001:db8::53]:53" or "ns1.example.com:53", for messages. */
export function describeServer(server: DnsServer): string {
  return `${server.host.includes(":") ? `[${server.host}]` : server.host}:${server.port}`;
}

/**
 * Sends `message` to `server` and returns the raw answer: over UDP, then over TCP (RFC 1035
 * §4.2.2, 2-byte length prefix) when the UDP answer is truncated or none comes (a firewall that
 * drops UDP, a large answer). The answer's ID must match the message's.
 */
export async function exchange(server: DnsServer, message: Buffer): Promise<Buffer> {
  const address = isIP(server.host) ? server.host : await lookup(server.host).then(
    (a) => a.address,
    (err: NodeJS.ErrnoException) => {
      throw new GatewayError("dns.server_unresolved", `DNS server ${describeServer(server)}: its name does not resolve (${err.code ?? err.message}); write its IP address in acme.dns.server`);
    },
  );
  const udp = await exchangeUdp(address, server.port, message).catch(() => undefined);
  if (udp && (udp.readUInt16BE(2) & 0x0200) === 0) return udp;
  try {
    return await exchangeTcp(address, server.port, message);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new GatewayError("dns.no_answer", `DNS server ${describeServer(server)} did not answer over UDP or TCP (${code}); check acme.dns.server and that this machine may reach its port ${server.port}`, { cause: err });
  }
}

function exchangeUdp(address: string, port: number, message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
    const timer = setTimeout(() => finish(new Error("ETIMEOUT")), UDP_TIMEOUT_MS);
    let settled = false;
    const finish = (err: Error | null, answer?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(answer as Buffer);
    };
    socket.on("error", (err) => finish(err));
    socket.on("message", (answer, from) => {
      // Anything else (another sender, a late answer to an earlier try, a spoof) is ignored until the timeout.
      const peer = socket.remoteAddress();
      if (from.address === peer.address && from.port === peer.port && answer.length >= 12 && answer.readUInt16BE(0) === message.readUInt16BE(0)) finish(null, answer);
    });
    // Connected: the kernel delivers only datagrams from the server asked (and the check above says so again).
    socket.connect(port, address, () => socket.send(message));
  });
}

function exchangeTcp(address: string, port: number, message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port });
    let received = Buffer.alloc(0);
    socket.setTimeout(TCP_TIMEOUT_MS, () => socket.destroy(Object.assign(new Error("ETIMEOUT"), { code: "ETIMEOUT" })));
    socket.on("error", reject);
    socket.on("connect", () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.write(Buffer.concat([length, message]));
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      socket.destroy();
      const answer = received.subarray(2, 2 + received.readUInt16BE(0));
      if (answer.length >= 12 && answer.readUInt16BE(0) === message.readUInt16BE(0)) resolve(answer);
      else reject(new Error("answer with another ID"));
    });
    socket.on("close", () => reject(new Error("ECONNRESET")));
  });
}
