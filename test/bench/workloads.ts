import { spawn } from "node:child_process";
import { Agent, request } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { loopbackLookup } from "../support/notebook-client.js";
import { requireTool } from "../support/tools.js";
import { LARGE_BYTES } from "./bench-upstream.js";
import { cpuMicros, rssKiB } from "./process-stats.js";
import type { Running } from "./systems.js";

/** How long and how much each workload runs: the full run and the --quick proof that it runs. */
export interface Effort {
  /** wrk against the system before measuring, so the JIT has warmed up (Node) as it would in service. */
  readonly warmupSeconds: number;
  readonly wrkSeconds: number;
  readonly transfers: number;
  readonly echoes: number;
  readonly bulkEchoes: number;
  readonly handshakeSeconds: number;
  readonly idleSockets: number;
}

export const FULL: Effort = { warmupSeconds: 3, wrkSeconds: 8, transfers: 4, echoes: 3000, bulkEchoes: 400, handshakeSeconds: 3, idleSockets: 250 };
export const QUICK: Effort = { warmupSeconds: 0, wrkSeconds: 1, transfers: 1, echoes: 100, bulkEchoes: 20, handshakeSeconds: 1, idleSockets: 100 };

/** One row of the table: what is measured, its unit, and which way is better. */
export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly higherIsBetter: boolean;
  /** Measured over HTTP/2: "n/a" for a system that does not offer h2 (configurable-http-proxy, node-direct). */
  readonly http2?: boolean;
}

export const METRICS: readonly Metric[] = [
  { key: "rps", label: "small GET, wrk -c32: req/s", higherIsBetter: true },
  { key: "p99", label: "same: p99 ms", higherIsBetter: false },
  { key: "cpu", label: "same: proxy CPU µs/req", higherIsBetter: false },
  { key: "h2Rps", label: "small GET over HTTP/2, h2load -c8 -m16: req/s", higherIsBetter: true, http2: true },
  { key: "h2Cpu", label: "same over HTTP/2: proxy CPU µs/req", higherIsBetter: false, http2: true },
  { key: "download", label: "32 MiB download MiB/s", higherIsBetter: true },
  { key: "upload", label: "32 MiB upload MiB/s", higherIsBetter: true },
  { key: "wsRtt", label: "WebSocket 200 B echo RTT p50 µs", higherIsBetter: false },
  { key: "wsBulk", label: "WebSocket 64 KiB echo MiB/s", higherIsBetter: true },
  { key: "tlsNew", label: "new TLS connections/s (full TLS 1.3 handshake)", higherIsBetter: true },
  { key: "tlsResumed", label: "resumed TLS connections/s (TLS 1.2 ticket)", higherIsBetter: true },
  { key: "idleWs", label: "idle WebSockets: KiB per connection", higherIsBetter: false },
  { key: "rss", label: "RSS after start, MiB", higherIsBetter: false },
  { key: "rpsAllCores", label: "all cores (gateway workers: auto; nginx worker_processes auto): small GET req/s", higherIsBetter: true },
  { key: "p99AllCores", label: "all cores: p99 ms", higherIsBetter: false },
  { key: "cpuAllCores", label: "all cores: proxy CPU µs/req", higherIsBetter: false },
];

/** The TLS client side: the bench's CA and the certificate's name, on loopback. */
export interface Client {
  readonly ca: string;
  readonly caPath: string;
  readonly name: string;
}

/**
 * Runs the workloads against one running system; returns metric key → value. `rows` (metric
 * keys) runs only the workloads that measure them (`npm run bench -- --rows h2Rps,h2Cpu`).
 */
export async function measure(system: Running, client: Client, effort: Effort, rows?: readonly string[]): Promise<Record<string, number>> {
  const wanted = (...keys: string[]): boolean => !rows || keys.some((k) => rows.includes(k));
  const result: Record<string, number> = wanted("rss") ? { rss: rssKiB(system.pid) / 1024 } : {};
  if (wanted("rps", "p99", "cpu")) Object.assign(result, await smallGets(system, effort));
  if (wanted("h2Rps", "h2Cpu")) Object.assign(result, await http2SmallGets(system, effort));
  if (wanted("download")) result.download = await download(system, client, effort);
  if (wanted("upload")) result.upload = await upload(system, client, effort);
  if (wanted("wsRtt")) result.wsRtt = await webSocketRtt(system, client, effort);
  if (wanted("wsBulk")) result.wsBulk = await webSocketBulk(system, client, effort);
  if (wanted("tlsNew")) result.tlsNew = await handshakes(system, client, effort, false);
  if (wanted("tlsResumed")) result.tlsResumed = await handshakes(system, client, effort, true);
  if (wanted("idleWs")) result.idleWs = await idleWebSockets(system, client, effort);
  return result;
}

/** wrk's small GETs (after a warm-up): requests per second, p99 latency, the system's CPU per request. */
export async function smallGets(system: Running, effort: Effort): Promise<{ rps: number; p99: number; cpu: number }> {
  const wrk = requireTool("/usr/bin/wrk", "wrk");
  if (effort.warmupSeconds > 0) await run(wrk, ["-t2", "-c32", `-d${effort.warmupSeconds}s`, `https://localhost:${system.port}/small`]);
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

/**
 * Small GETs over HTTP/2 as a browser sends them: few connections, many streams on each (8 x 16
 * in flight). Nothing for a system that does not negotiate h2. Zero failed or errored requests
 * and nothing but 2xx, or the run stops.
 */
async function http2SmallGets(system: Running, effort: Effort): Promise<Record<string, number>> {
  const h2load = requireTool("/usr/bin/h2load", "nghttp2-client");
  const args = ["-t2", "-c8", "-m16", `https://localhost:${system.port}/small`];
  if (effort.warmupSeconds > 0) await run(h2load, ["-D", String(effort.warmupSeconds), ...args]);
  const cpuBefore = cpuMicros(system.pid);
  const out = await run(h2load, ["-D", String(effort.wrkSeconds), ...args]);
  const cpu = cpuMicros(system.pid) - cpuBefore;
  if (!/Application protocol: h2/.test(out)) return {};
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  // With -D, responses still arriving at the end count in the status codes but not in "done".
  const others = /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!done || done[3] !== "0" || done[4] !== "0" || !others || others.slice(1).some((n) => n !== "0")) throw new Error(`h2load against port ${system.port} did not measure cleanly:\n${out}`);
  return { h2Rps: Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1]), h2Cpu: cpu / Number(done[1]) };
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

/**
 * TLS connections per second from 4 concurrent `openssl s_time` clients (a Node client was the
 * bottleneck at ~340/s for every system). New: full TLS 1.3 handshakes. Resumed: TLS 1.2 session
 * tickets, since s_time cannot resume TLS 1.3 (it never reads the post-handshake ticket).
 */
async function handshakes(system: Running, client: Client, effort: Effort, resume: boolean): Promise<number> {
  const openssl = requireTool("/usr/bin/openssl", "openssl");
  const args = ["s_time", "-connect", `127.0.0.1:${system.port}`, "-CAfile", client.caPath, "-time", String(effort.handshakeSeconds), ...(resume ? ["-reuse", "-tls1_2"] : ["-new"])];
  const started = performance.now();
  const outputs = await Promise.all(Array.from({ length: 4 }, () => run(openssl, args)));
  const seconds = (performance.now() - started) / 1000;
  let connections = 0;
  for (const out of outputs) {
    const count = Number(/(\d+) connections in [\d.]+s;/.exec(out)?.[1]);
    // s_time prints "*" per full handshake and "r" per resumed one.
    const progress = out.split("\n").find((l) => /^[r*]+$/.test(l)) ?? "";
    const resumed = [...progress].filter((c) => c === "r").length;
    if (!count || (resume && resumed < progress.length * 0.9)) throw new Error(`openssl s_time against port ${system.port} did not ${resume ? "resume sessions" : "connect"}:\n${out.slice(-500)}`);
    connections += count;
  }
  return connections / seconds;
}

async function idleWebSockets(system: Running, client: Client, effort: Effort): Promise<number> {
  await sleep(300);
  const before = rssKiB(system.pid);
  const sockets: WebSocket[] = [];
  for (let i = 0; i < effort.idleSockets; i += 50) {
    // 50 loopback source addresses' worth at a time: the gateway allows 128 connections per address (and 256 WebSockets per site).
    const localAddress = `127.0.0.${2 + i / 50}`;
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, effort.idleSockets - i) }, () => openWebSocket(system, client, localAddress)))));
  }
  await sleep(1000);
  const after = rssKiB(system.pid);
  for (const ws of sockets) ws.terminate();
  await sleep(300);
  return (after - before) / effort.idleSockets;
}

function openWebSocket(system: Running, client: Client, localAddress?: string): Promise<WebSocket> {
  const ws = new WebSocket(`wss://${client.name}:${system.port}/ws`, { ca: client.ca, lookup: loopbackLookup, perMessageDeflate: false, ...(localAddress ? { localAddress } : {}) });
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
