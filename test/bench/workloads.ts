import { spawn } from "node:child_process";
import { Agent, request } from "node:https";
import { connect, type TLSSocket } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { loopbackLookup } from "../support/notebook-client.js";
import { requireTool } from "../support/tools.js";
import { LARGE_BYTES } from "./bench-upstream.js";
import { cpuMicros, rssKiB } from "./process-stats.js";
import type { Running } from "./systems.js";

/** How long and how much each workload runs: the full run and the --quick proof that it runs. */
export interface Effort {
  readonly wrkSeconds: number;
  readonly transfers: number;
  readonly echoes: number;
  readonly bulkEchoes: number;
  readonly handshakeSeconds: number;
  readonly idleSockets: number;
}

export const FULL: Effort = { wrkSeconds: 8, transfers: 4, echoes: 3000, bulkEchoes: 400, handshakeSeconds: 3, idleSockets: 2000 };
export const QUICK: Effort = { wrkSeconds: 1, transfers: 1, echoes: 100, bulkEchoes: 20, handshakeSeconds: 0.5, idleSockets: 100 };

/** One row of the table: what is measured, its unit, and which way is better. */
export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly higherIsBetter: boolean;
}

export const METRICS: readonly Metric[] = [
  { key: "rps", label: "small GET, wrk -c32: req/s", higherIsBetter: true },
  { key: "p99", label: "same: p99 ms", higherIsBetter: false },
  { key: "cpu", label: "same: proxy CPU µs/req", higherIsBetter: false },
  { key: "download", label: "32 MiB download MiB/s", higherIsBetter: true },
  { key: "upload", label: "32 MiB upload MiB/s", higherIsBetter: true },
  { key: "wsRtt", label: "WebSocket 200 B echo RTT p50 µs", higherIsBetter: false },
  { key: "wsBulk", label: "WebSocket 64 KiB echo MiB/s", higherIsBetter: true },
  { key: "tlsNew", label: "new TLS connections/s (full handshake)", higherIsBetter: true },
  { key: "tlsResumed", label: "resumed TLS connections/s", higherIsBetter: true },
  { key: "idleWs", label: "idle WebSockets: KiB per connection", higherIsBetter: false },
  { key: "rss", label: "RSS after start, MiB", higherIsBetter: false },
];

/** The TLS client side: the bench's CA and the certificate's name, on loopback. */
export interface Client {
  readonly ca: string;
  readonly name: string;
}

/** Runs every workload against one running system; returns metric key → value. */
export async function measure(system: Running, client: Client, effort: Effort): Promise<Record<string, number>> {
  const result: Record<string, number> = { rss: rssKiB(system.pid) / 1024 };
  Object.assign(result, await smallGets(system, effort));
  result.download = await download(system, client, effort);
  result.upload = await upload(system, client, effort);
  result.wsRtt = await webSocketRtt(system, client, effort);
  result.wsBulk = await webSocketBulk(system, client, effort);
  result.tlsNew = await handshakes(system, client, effort, false);
  result.tlsResumed = await handshakes(system, client, effort, true);
  result.idleWs = await idleWebSockets(system, client, effort);
  return result;
}

async function smallGets(system: Running, effort: Effort): Promise<Record<string, number>> {
  const wrk = requireTool("/usr/bin/wrk", "wrk");
  const cpuBefore = cpuMicros(system.pid);
  const out = await run(wrk, ["-t2", "-c32", `-d${effort.wrkSeconds}s`, "--latency", `https://localhost:${system.port}/small`]);
  const cpu = cpuMicros(system.pid) - cpuBefore;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const p99 = /99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!requests || !p99 || errors) throw new Error(`wrk against port ${system.port} did not measure cleanly:\n${out}`);
  const unit = { us: 0.001, ms: 1, s: 1000 }[p99[2] as "us" | "ms" | "s"];
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p99: Number(p99[1]) * unit, cpu: cpu / requests };
}

async function download(system: Running, client: Client, effort: Effort): Promise<number> {
  const agent = new Agent({ keepAlive: true, ca: client.ca });
  const started = performance.now();
  for (let i = 0; i < effort.transfers; i++) {
    const bytes = await new Promise<number>((resolve, reject) => {
      request({ host: "127.0.0.1", servername: client.name, port: system.port, path: "/large", agent, headers: { host: `${client.name}:${system.port}` } }, (res) => {
        let n = 0;
        res.on("data", (chunk: Buffer) => (n += chunk.length));
        res.on("end", () => resolve(n));
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });
    if (bytes !== LARGE_BYTES) throw new Error(`download through port ${system.port} got ${bytes} bytes, expected ${LARGE_BYTES}`);
  }
  agent.destroy();
  return mibPerSecond(effort.transfers * LARGE_BYTES, started);
}

async function upload(system: Running, client: Client, effort: Effort): Promise<number> {
  const agent = new Agent({ keepAlive: true, ca: client.ca });
  const chunk = Buffer.alloc(1024 * 1024, "u");
  const started = performance.now();
  for (let i = 0; i < effort.transfers; i++) {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", servername: client.name, port: system.port, path: "/upload", method: "POST", agent, headers: { host: `${client.name}:${system.port}`, "content-length": LARGE_BYTES } }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve(text));
      });
      req.on("error", reject);
      const write = (left: number): void => {
        if (left === 0) {
          req.end();
          return;
        }
        if (req.write(chunk)) write(left - 1);
        else req.once("drain", () => write(left - 1));
      };
      write(LARGE_BYTES / chunk.length);
    });
    if (answer !== String(LARGE_BYTES)) throw new Error(`upload through port ${system.port}: the upstream counted ${answer} bytes`);
  }
  agent.destroy();
  return mibPerSecond(effort.transfers * LARGE_BYTES, started);
}

async function webSocketRtt(system: Running, client: Client, effort: Effort): Promise<number> {
  const ws = await openWebSocket(system, client);
  const message = Buffer.alloc(200, "w");
  const rtts: number[] = [];
  for (let i = 0; i < effort.echoes; i++) {
    const sent = performance.now();
    await echo(ws, message);
    rtts.push((performance.now() - sent) * 1000);
  }
  ws.close();
  rtts.sort((a, b) => a - b);
  return rtts[Math.floor(rtts.length / 2)] ?? NaN;
}

async function webSocketBulk(system: Running, client: Client, effort: Effort): Promise<number> {
  const ws = await openWebSocket(system, client);
  const message = Buffer.alloc(64 * 1024, "b");
  const started = performance.now();
  for (let i = 0; i < effort.bulkEchoes; i++) await echo(ws, message);
  ws.close();
  return mibPerSecond(effort.bulkEchoes * message.length, started);
}

/** TLS connections per second from 8 concurrent clients, each handshake new or resumed from a ticket. */
async function handshakes(system: Running, client: Client, effort: Effort, resume: boolean): Promise<number> {
  const deadline = performance.now() + effort.handshakeSeconds * 1000;
  let completed = 0;
  const loop = async (): Promise<void> => {
    let session: Buffer | undefined;
    if (resume) session = (await handshake(system, client, undefined)).session;
    while (performance.now() < deadline) {
      const result = await handshake(system, client, session);
      if (resume && !result.reused) throw new Error(`port ${system.port} did not resume the TLS session`);
      if (resume) session = result.session ?? session;
      completed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 8 }, loop));
  return completed / ((performance.now() - started) / 1000);
}

function handshake(system: Running, client: Client, session: Buffer | undefined): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let newSession: Buffer | undefined;
    const socket: TLSSocket = connect({ host: "127.0.0.1", port: system.port, servername: client.name, ca: client.ca, ...(session ? { session } : {}) });
    socket.on("session", (s: Buffer) => (newSession = s));
    socket.once("secureConnect", () => {
      const reused = socket.isSessionReused();
      // TLS 1.3 sends the ticket after the handshake: wait a moment for it on the first connection.
      if (session === undefined) setTimeout(() => finish(reused), 20);
      else finish(reused);
    });
    socket.on("error", reject);
    const finish = (reused: boolean): void => {
      socket.destroy();
      resolve({ reused, session: newSession });
    };
  });
}

async function idleWebSockets(system: Running, client: Client, effort: Effort): Promise<number> {
  await sleep(300);
  const before = rssKiB(system.pid);
  const sockets: WebSocket[] = [];
  for (let i = 0; i < effort.idleSockets; i += 50) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, effort.idleSockets - i) }, () => openWebSocket(system, client)))));
  }
  await sleep(1000);
  const after = rssKiB(system.pid);
  for (const ws of sockets) ws.terminate();
  await sleep(300);
  return (after - before) / effort.idleSockets;
}

function openWebSocket(system: Running, client: Client): Promise<WebSocket> {
  const ws = new WebSocket(`wss://${client.name}:${system.port}/ws`, { ca: client.ca, lookup: loopbackLookup, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket through port ${system.port} refused: HTTP ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

function echo(ws: WebSocket, message: Buffer): Promise<void> {
  return new Promise((resolve) => {
    ws.once("message", () => resolve());
    ws.send(message);
  });
}

function mibPerSecond(bytes: number, started: number): number {
  return bytes / (1024 * 1024) / ((performance.now() - started) / 1000);
}

function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${out}`))));
  });
}
