import { once } from "node:events";
import { rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { fileURLToPath, pathToFileURL } from "node:url";
import { request, type Agent } from "undici";
import { openWebSocket } from "../support/gateway-client.js";
import { scrapeMetric } from "../support/gateway-metrics.js";
import { startGateway, testConfigYaml, type GatewayProcess } from "../support/gateway-process.js";
import { loopbackLookup, trustingAgent } from "../support/notebook-client.js";
import { residentSetKb, settledFdCount } from "../support/process-resources.js";
import { freePort, startProcess, stopStartedProcesses, waitFor, type TestProcess } from "../support/processes.js";
import { isProcessRunning } from "../../src/platform/process-status.js";
import { createTestBed } from "../support/test-ca.js";

const SITE = "soak.example.test";
const MB = 1024 * 1024;
/** A job that takes longer has hung in the gateway: it is cut and counted as failed. */
const JOB_TIMEOUT_MS = 30_000;
const HUNG = `no end within ${JOB_TIMEOUT_MS / 1000} s`;
/**
 * A client whose job failed waits this long before its next one, as a user reloading would:
 * without it, fast 502s while the upstream is down would use up most of the jobs.
 */
const PAUSE_AFTER_FAILURE_MS = 50;
const UPSTREAM_MAIN = fileURLToPath(new URL("./soak-upstream.js", import.meta.url));

/** How much load, how often the upstream dies, and what the gateway must come back to. */
export interface SoakOptions {
  /** HTTP requests after the warm-up: small GETs, 1 MB downloads and uploads, aborted uploads. */
  readonly requests: number;
  /** WebSocket sessions after the warm-up, half closed cleanly, half cut. */
  readonly sessions: number;
  readonly concurrency: number;
  /**
   * The upstream is killed (SIGKILL and SIGTERM in turn) once this many jobs have succeeded since
   * it last came back, warm-up included, and restarted after downMs: counted in served jobs, not
   * seconds, so the schedule is the same for a gateway that serves (or fails) fast or slowly.
   */
  readonly killAfterJobs: number;
  /** How long the upstream stays down each time (requests get 502s meanwhile). */
  readonly downMs: number;
  /** Requests and sessions of the same mix before the baseline is taken (not counted). */
  readonly warmupRequests: number;
  readonly warmupSessions: number;
  /**
   * Quiet time before the baseline (after the warm-up) and the end (after the load) are measured;
   * longer than the 5 s in which the gateway closes a socket whose client never closes its side.
   */
  readonly quietMs: number;
  /** Allowed fd growth from after the warm-up to the end. */
  readonly fdSlack: number;
  /** Allowed RSS growth from after the warm-up to the end (0.2 = 20 %). */
  readonly rssGrowth: number;
  /** Progress lines to stderr. */
  readonly log?: (line: string) => void;
}

export const FULL_SOAK: SoakOptions = { requests: 10_000, sessions: 1_000, concurrency: 32, killAfterJobs: 400, downMs: 300, warmupRequests: 1_000, warmupSessions: 100, quietMs: 6_000, fdSlack: 5, rssGrowth: 0.2 };

type Kind = "small" | "download" | "upload" | "aborted-upload" | "ws-clean" | "ws-abrupt";
const KINDS: readonly Kind[] = ["small", "download", "upload", "aborted-upload", "ws-clean", "ws-abrupt"];

interface Tally {
  ok: number;
  failed: number;
  /** Failure reasons (status or error) and how often. */
  readonly reasons: Map<string, number>;
}

export interface SoakReport {
  readonly tallies: ReadonlyMap<Kind, Tally>;
  /** Restarts by the killer while the counted load ran. */
  readonly upstreamRestarts: { sigkill: number; sigterm: number };
  readonly fds: { start: number; end: number };
  readonly rssKb: { warm: number; end: number };
  readonly websocketsOpenAtEnd: number | undefined;
  readonly durationMs: number;
  /** Broken invariants; empty when the gateway survived and came back to its baseline. */
  readonly problems: string[];
}

/** The mix: of every 20 jobs, 2 are WebSocket sessions; of the requests 70 % small, 10 % each of the others. */
function jobsFor(requests: number, sessions: number): Kind[] {
  const jobs: Kind[] = [];
  const requestKinds: Kind[] = ["small", "small", "small", "small", "small", "small", "small", "download", "upload", "aborted-upload"];
  let r = 0;
  let s = 0;
  while (r < requests || s < sessions) {
    // Spread the sessions evenly over the requests.
    if (s < sessions && (r >= requests || s * requests <= r * sessions)) jobs.push(s++ % 2 === 0 ? "ws-clean" : "ws-abrupt");
    else jobs.push(requestKinds[r++ % requestKinds.length] as Kind);
  }
  return jobs;
}

/** Runs one job against the gateway; resolves with null (ok) or why it failed. Never rejects. */
async function runJob(kind: Kind, port: number, ca: string, agent: Agent): Promise<string | null> {
  const origin = `https://${SITE}:${port}`;
  const signal = AbortSignal.timeout(JOB_TIMEOUT_MS);
  try {
    switch (kind) {
      case "small":
      case "download": {
        const res = await request(`${origin}${kind === "small" ? "/ok" : `/bytes/${MB}`}`, { dispatcher: agent, signal });
        let bytes = 0;
        let firstChunk = "";
        for await (const chunk of res.body) {
          if (bytes === 0) firstChunk = (chunk as Buffer).toString("utf8", 0, 1024);
          bytes += (chunk as Buffer).length;
        }
        if (res.statusCode !== 200) return `HTTP ${res.statusCode}${titleOf(firstChunk)}`;
        return bytes === (kind === "small" ? 3 : MB) ? null : `${bytes} bytes`;
      }
      case "upload": {
        const res = await request(`${origin}/upload`, { method: "POST", body: Buffer.alloc(MB, "u"), headers: { "content-type": "application/octet-stream" }, dispatcher: agent, signal });
        const text = await res.body.text();
        if (res.statusCode !== 200) return `HTTP ${res.statusCode}${titleOf(text)}`;
        return (JSON.parse(text) as { bytes: number }).bytes === MB ? null : `upstream saw ${text}`;
      }
      case "aborted-upload":
        return await abortedUpload(port, ca, signal);
      case "ws-clean":
      case "ws-abrupt":
        return await webSocketSession(kind, port, ca, signal);
    }
  } catch (err) {
    if (signal.aborted) return HUNG;
    return (err as Error & { code?: string }).code ?? (err as Error).message;
  }
}

/** The gateway's status page title (" (The notebook is not reachable)"), to tell 502s apart. */
function titleOf(page: string): string {
  const title = /<title>\d{3} ([^<]*)<\/title>/.exec(page)?.[1];
  return title === undefined ? "" : ` (${title})`;
}

/** Announces 1 MB, sends 256 KB, then goes away. Ok when nothing answered before the abort. */
async function abortedUpload(port: number, ca: string, signal: AbortSignal): Promise<string | null> {
  const req = httpsRequest({ host: "127.0.0.1", port, servername: SITE, ca, lookup: loopbackLookup, agent: false, method: "POST", path: "/upload", headers: { host: `${SITE}:${port}`, "content-length": MB } });
  let answered: string | null = null;
  req.on("response", (res) => {
    answered = `HTTP ${res.statusCode} before the abort`;
    res.resume();
  });
  req.on("error", () => {});
  signal.addEventListener("abort", () => req.destroy());
  const closed = new Promise((resolve) => req.once("close", resolve));
  await new Promise<void>((resolve) => req.write(Buffer.alloc(256 * 1024, "a"), () => resolve()));
  req.destroy();
  await closed;
  // A gateway that refuses at once (upstream down: 502) may answer before the abort; that is fine too.
  return answered === null || answered === "HTTP 502 before the abort" ? null : answered;
}

/** Opens a session, exchanges messages, and closes it cleanly or cuts it. */
async function webSocketSession(kind: "ws-clean" | "ws-abrupt", port: number, ca: string, signal: AbortSignal): Promise<string | null> {
  const { ws, opened, outcome } = openWebSocket(port, SITE, ca, "/ws/echo");
  signal.addEventListener("abort", () => ws.terminate());
  if (!(await opened)) {
    const seen = await outcome;
    return seen.refusedStatus !== null ? `HTTP ${seen.refusedStatus}` : `not opened (${seen.errors.join(",")})`;
  }
  const rounds = kind === "ws-clean" ? 3 : 1;
  for (let i = 0; i < rounds; i++) {
    const echo = Promise.race([once(ws, "message").then(() => true), once(ws, "close").then(() => false)]);
    ws.send(`message ${i}`);
    if (!(await echo)) return `closed after ${i} echoes (${(await outcome).closeCode})`;
  }
  if (kind === "ws-clean") ws.close(1000);
  else ws.terminate();
  const seen = await outcome;
  if (signal.aborted) return HUNG;
  const protocolErrors = seen.errors.filter((e) => e.startsWith("WS_ERR_"));
  if (protocolErrors.length > 0) return protocolErrors.join(",");
  return kind === "ws-clean" && seen.closeCode !== 1000 ? `close code ${seen.closeCode}` : null;
}

/** Runs `jobs` with `concurrency` workers. */
async function runJobs(jobs: readonly Kind[], concurrency: number, run: (kind: Kind) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < jobs.length) await run(jobs[next++] as Kind);
  }));
}

/** The upstream process on its fixed port, killed and restarted on demand. */
class UpstreamProcess {
  private proc: TestProcess | undefined;
  readonly restarts = { sigkill: 0, sigterm: 0 };

  constructor(readonly port: number) {}

  async start(): Promise<void> {
    const proc = startProcess(process.execPath, [UPSTREAM_MAIN, String(this.port)]);
    this.proc = proc;
    await waitFor(`the soak upstream on port ${this.port} (output: ${proc.output().slice(-300)})`, () => {
      if (proc.child.exitCode !== null) throw new Error(`soak upstream exited ${proc.child.exitCode}: ${proc.output()}`);
      return proc.output().includes('"upstream.ready"') ? true : undefined;
    }, 10_000, 20);
  }

  async kill(signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    await this.proc?.stop(signal);
    this.restarts[signal === "SIGKILL" ? "sigkill" : "sigterm"]++;
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }
}

/** Lines in the gateway's output that a healthy run never has. */
function alarmingLines(output: string): string[] {
  return output.split("\n").filter((l) => /unhandled|gateway\.crashed|uncaught|^\s+at .+:\d+:\d+\)?$|^\w*Error: /i.test(l)).slice(0, 10);
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const { dir, ca, leaf } = createTestBed("soak-", [SITE]);
  const upstream = new UpstreamProcess(await freePort());
  let gateway: GatewayProcess | undefined;
  let agent: Agent | undefined;
  try {
    await upstream.start();
    gateway = await startGateway(dir, testConfigYaml([{ host: SITE, upstreamPort: upstream.port, certPath: leaf.certPath, keyPath: leaf.keyPath }], { admin: true }));
    const { httpsPort, adminPort } = gateway;
    const pid = gateway.process.pid;
    agent = trustingAgent(ca.certPem);
    const tallies = new Map<Kind, Tally>(KINDS.map((k) => [k, { ok: 0, failed: 0, reasons: new Map() }]));
    const tally = (kind: Kind, failure: string | null): void => {
      const t = tallies.get(kind) as Tally;
      if (failure === null) t.ok++;
      else {
        t.failed++;
        t.reasons.set(failure, (t.reasons.get(failure) ?? 0) + 1);
      }
    };

    // The killer: SIGKILL and SIGTERM in turn, down for downMs, back on the same port.
    let useKill = true;
    const runLoad = async (jobs: readonly Kind[], onResult: (kind: Kind, failure: string | null) => void): Promise<void> => {
      let sinceRestart = 0;
      let cycle: Promise<void> | null = null;
      let done = 0;
      await runJobs(jobs, options.concurrency, async (kind) => {
        const failure = await runJob(kind, httpsPort, ca.certPem, agent as Agent);
        onResult(kind, failure);
        if (++done % 1000 === 0) log(`${done}/${jobs.length} jobs`);
        if (failure !== null) await new Promise((resolve) => setTimeout(resolve, PAUSE_AFTER_FAILURE_MS));
        if (failure !== null || cycle !== null || ++sinceRestart < options.killAfterJobs) return;
        cycle = (async () => {
          await upstream.kill(useKill ? "SIGKILL" : "SIGTERM");
          useKill = !useKill;
          await new Promise((resolve) => setTimeout(resolve, options.downMs));
          await upstream.start();
          log(`upstream restarted (${upstream.restarts.sigkill} SIGKILL, ${upstream.restarts.sigterm} SIGTERM so far)`);
          sinceRestart = 0;
          cycle = null;
        })();
      });
      await cycle;
    };

    // The warm-up has the same mix and the same upstream deaths, so the baseline has seen every path.
    log(`warm-up: ${options.warmupRequests} requests, ${options.warmupSessions} WebSocket sessions`);
    await runLoad(jobsFor(options.warmupRequests, options.warmupSessions), () => {});
    // Both baselines without idle kept-alive connections: they close with the upstream they lead to.
    await agent.close();
    agent = trustingAgent(ca.certPem);
    await upstream.kill("SIGTERM");
    await upstream.start();
    await new Promise((resolve) => setTimeout(resolve, options.quietMs));
    const fdStart = await settledFdCount(pid);
    const rssWarm = residentSetKb(pid);
    log(`baseline: ${fdStart} fds, RSS ${(rssWarm / 1024).toFixed(1)} MB`);

    const restartsBefore = { ...upstream.restarts };
    await runLoad(jobsFor(options.requests, options.sessions), tally);
    const restarts = { sigkill: upstream.restarts.sigkill - restartsBefore.sigkill, sigterm: upstream.restarts.sigterm - restartsBefore.sigterm };

    // The end as the start: no client connections, the upstream freshly restarted, then quiet.
    await agent.close();
    agent = undefined;
    await upstream.kill("SIGTERM");
    await upstream.start();
    await new Promise((resolve) => setTimeout(resolve, options.quietMs));
    const problems: string[] = [];
    const alive = gateway.process.child.exitCode === null && isProcessRunning(pid);
    if (!alive) problems.push(`the gateway died (exit ${gateway.process.child.exitCode}): ${alarmingLines(gateway.process.output()).join(" | ")}`);
    const fdEnd = alive ? await settledFdCount(pid) : -1;
    const rssEnd = alive ? residentSetKb(pid) : -1;
    const websocketsOpen = alive ? await scrapeMetric(adminPort as number, "gateway_websockets_open") : undefined;
    if (alive) {
      if (fdEnd > fdStart + options.fdSlack) problems.push(`fds: ${fdStart} after the warm-up, ${fdEnd} at the end (allowed +${options.fdSlack})`);
      if (websocketsOpen !== 0) problems.push(`gateway_websockets_open is ${websocketsOpen} at the end, expected 0`);
      if (rssEnd > rssWarm * (1 + options.rssGrowth)) problems.push(`RSS: ${(rssWarm / 1024).toFixed(1)} MB after the warm-up, ${(rssEnd / 1024).toFixed(1)} MB at the end (allowed +${options.rssGrowth * 100} %)`);
    }
    if (alive) {
      const lastAgent = trustingAgent(ca.certPem);
      const served = await runJob("small", httpsPort, ca.certPem, lastAgent);
      await lastAgent.close();
      if (served !== null) problems.push(`after the quiet, with the upstream up, a request still fails: ${served}`);
    }
    const alarming = alarmingLines(gateway.process.output());
    if (alarming.length > 0) problems.push(`the gateway's output has: ${alarming.join(" | ")}`);
    const hung = [...tallies].map(([kind, t]) => [kind, t.reasons.get(HUNG) ?? 0] as const).filter(([, n]) => n > 0);
    if (hung.length > 0) problems.push(`jobs hung for ${JOB_TIMEOUT_MS / 1000} s: ${hung.map(([kind, n]) => `${kind} ×${n}`).join(", ")}`);
    for (const [kind, tally] of tallies) if (tally.ok === 0) problems.push(`no ${kind} job succeeded: ${[...tally.reasons].map(([r, n]) => `${r} ×${n}`).join(", ")}`);
    return {
      tallies,
      upstreamRestarts: restarts,
      fds: { start: fdStart, end: fdEnd },
      rssKb: { warm: rssWarm, end: rssEnd },
      websocketsOpenAtEnd: websocketsOpen,
      durationMs: performance.now() - started,
      problems,
    };
  } finally {
    await agent?.close();
    await gateway?.stop();
    await upstream.stop();
    await stopStartedProcesses();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The summary README quotes. */
export function formatSoakReport(report: SoakReport): string {
  const rows = [...report.tallies].map(([kind, t]) => {
    const reasons = [...t.reasons].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([r, n]) => `${r} ×${n}`).join(", ");
    return `| ${kind.padEnd(14)} | ${String(t.ok).padStart(6)} | ${String(t.failed).padStart(6)} | ${reasons} |`;
  });
  const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
  return [
    "| kind           |     ok | failed | failures (most frequent) |",
    "|----------------|-------:|-------:|--------------------------|",
    ...rows,
    "",
    `upstream restarts: ${report.upstreamRestarts.sigkill + report.upstreamRestarts.sigterm} (${report.upstreamRestarts.sigkill} SIGKILL, ${report.upstreamRestarts.sigterm} SIGTERM)`,
    `gateway fds: ${report.fds.start} after warm-up, ${report.fds.end} at the end`,
    `gateway RSS: ${mb(report.rssKb.warm)} after warm-up, ${mb(report.rssKb.end)} at the end`,
    `gateway_websockets_open at the end: ${report.websocketsOpenAtEnd}`,
    `duration: ${(report.durationMs / 1000).toFixed(1)} s`,
    report.problems.length === 0 ? "invariants: all held" : `PROBLEMS:\n${report.problems.map((p) => `  - ${p}`).join("\n")}`,
  ].join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await runSoak({ ...FULL_SOAK, log: (line) => process.stderr.write(`soak: ${line}\n`) });
  process.stdout.write(`${formatSoakReport(report)}\n`);
  process.exitCode = report.problems.length === 0 ? 0 : 1;
}
