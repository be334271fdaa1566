import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect as netConnect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { waitFor } from "./processes.js";
import { tcpSockets } from "./process-resources.js";

const KEEP_BYTES = 256 * 1024;

/** How a client goes away: a TCP RST, a FIN (end(), the socket half-open), or destroy() (close the fd). */
export type Cut = "rst" | "fin" | "destroy";
export const CUTS: readonly Cut[] = ["rst", "fin", "destroy"];

/**
 * A TLS client whose TCP socket a test can cut in any phase. TLS runs over a Duplex fed from a
 * plain net.Socket (not over the socket itself), so the TCP socket stays a net.Socket:
 * resetAndDestroy() sends a real RST, and the server's first flight can be kept from the TLS
 * client (`holdHandshake`), which leaves the handshake half done on the server.
 */
export class CuttableConnection {
  /** The first KEEP_BYTES decrypted bytes received; the rest is only counted. */
  private plain = Buffer.alloc(0);
  private plainBytes = 0;
  private serverBytes = 0;

  private constructor(
    readonly raw: Socket,
    readonly tls: TLSSocket,
  ) {
    tls.on("data", (chunk: Buffer) => {
      this.plainBytes += chunk.length;
      if (this.plain.length < KEEP_BYTES) this.plain = Buffer.concat([this.plain, chunk.subarray(0, KEEP_BYTES - this.plain.length)]);
    });
  }

  /** `alpn`: the protocols to offer (e.g. ["h2"], to run an HTTP/2 session over `tls`); none by default. */
  static async open(port: number, servername: string, ca: string, options: { holdHandshake?: boolean; alpn?: string[] } = {}): Promise<CuttableConnection> {
    const raw = netConnect(port, "127.0.0.1");
    raw.on("error", () => {});
    await once(raw, "connect");
    const shim = new Duplex({
      write: (chunk: Buffer, _encoding, callback) => {
        if (raw.destroyed) callback();
        else raw.write(chunk, () => callback());
      },
      final: (callback) => {
        raw.end();
        callback();
      },
      // Backpressure from the TLS client to the TCP socket: a flooding server must not fill memory.
      read: () => void raw.resume(),
    });
    let connection: CuttableConnection | undefined;
    raw.on("data", (chunk: Buffer) => {
      if (connection) connection.serverBytes += chunk.length;
      if (!options.holdHandshake && !shim.push(chunk)) raw.pause();
    });
    raw.on("end", () => shim.push(null));
    raw.on("close", () => shim.destroy());
    const tls = tlsConnect({ socket: shim, servername, ca, ...(options.alpn ? { ALPNProtocols: options.alpn } : {}) });
    tls.on("error", () => {});
    connection = new CuttableConnection(raw, tls);
    if (options.holdHandshake) await waitFor("the server's first TLS flight", () => (connection.serverBytes > 0 ? true : undefined), 10_000, 5);
    else await once(tls, "secureConnect");
    return connection;
  }

  /** The first 256 KiB received (decrypted). */
  received(): Buffer {
    return this.plain;
  }

  /** How many bytes were received (decrypted) in all. */
  receivedBytes(): number {
    return this.plainBytes;
  }

  /** Writes through TLS and waits until the bytes are in the kernel (not in a Node buffer). */
  async write(data: string | Buffer): Promise<void> {
    await new Promise<void>((resolve) => this.tls.write(data, () => resolve()));
    await waitFor("the write to reach the kernel", () => (this.tls.writableLength === 0 && this.raw.writableLength === 0 ? true : undefined), 10_000, 5);
  }

  /**
   * Waits until the server's process has read everything sent so far: our send queue and its
   * receive queue are empty (/proc/net/tcp). The moment to cut "mid headers" or "mid frame".
   */
  async waitUntilPeerRead(): Promise<void> {
    const local = this.raw.localPort;
    const remote = this.raw.remotePort;
    await waitFor(`the gateway to read what 127.0.0.1:${local} sent`, () => {
      const tcp = tcpSockets();
      const ours = tcp.find((s) => s.localPort === local && s.remotePort === remote);
      const theirs = tcp.find((s) => s.localPort === remote && s.remotePort === local);
      return ours && theirs && ours.txQueue === 0 && theirs.rxQueue === 0 ? true : undefined;
    }, 10_000, 5);
  }

  async waitForReceived(what: string, isEnough: (received: Buffer) => boolean, timeoutMs = 10_000): Promise<Buffer> {
    return waitFor(what, () => (isEnough(this.plain) ? this.plain : undefined), timeoutMs, 5);
  }

  /** Cuts the connection; a FIN before the handshake finished goes out on the TCP socket directly. */
  cut(how: Cut): void {
    if (how === "rst") this.raw.resetAndDestroy();
    else if (how === "destroy") this.raw.destroy();
    else if (this.tls.encrypted && this.tls.authorized) this.tls.end();
    else this.raw.end();
  }

  /** Resolves when the TCP socket has closed (the server closed its side too, after a FIN). */
  async closed(): Promise<void> {
    if (!this.raw.closed) await once(this.raw, "close");
  }

  destroy(): void {
    this.raw.destroy();
    this.tls.destroy();
  }
}

/** The status of an HTTP/1.1 response head in `data`, once the whole head is there. */
export function responseStatus(data: Buffer): number | undefined {
  const text = data.toString("latin1");
  if (!text.includes("\r\n\r\n")) return undefined;
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
  return status === undefined ? undefined : Number(status);
}

/** A WebSocket handshake request as a browser sends it. */
export function upgradeRequest(path: string, host: string, origin: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n\r\n`;
}

/**
 * A masked client frame (RFC 6455 §5.2) carrying `payload`, announcing `announcedLength` (more
 * than the payload for a frame cut mid-way).
 */
export function clientFrame(payload: Buffer, announcedLength = payload.length, opcode = 0x2): Buffer {
  const lengthBytes = announcedLength < 126 ? Buffer.from([0x80 | announcedLength]) : announcedLength < 65536 ? Buffer.from([0x80 | 126, announcedLength >> 8, announcedLength & 0xff]) : Buffer.concat([Buffer.from([0x80 | 127]), bigLength(announcedLength)]);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x80 | opcode]), lengthBytes, mask, masked]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
