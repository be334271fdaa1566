import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { startProcess, stopStartedProcesses, waitFor } from "../support/processes.js";
import { requireTool } from "../support/tools.js";
import { BENCH_UPSTREAM_MAIN } from "./bench-upstream.js";
import { benchPageLoad, PAGE_LOAD_KERNEL_TRIES, PAGE_LOAD_OPTIONS } from "./page-load.js";
import { record, renderTable, type Samples } from "./report.js";
import { CADDY, CHP, DIRECT, GATEWAY, gatewaySystem, NGINX, type BenchContext, type BenchSystem } from "./systems.js";
import { FULL, measure, METRICS, QUICK, smallGets } from "./workloads.js";

/**
 * `npm run bench [-- --quick] [--rounds N] [--out FILE] [--baseline MAIN_JS] [--only NAMES] [--rows KEYS]`:
 * the gateway, nginx, Caddy and configurable-http-proxy, each terminating TLS with one ECDSA
 * P-256 certificate in front of one upstream, measured in interleaved rounds (A B C D, A B C D,
 * ...) since this machine is shared and noisy: only ratios from one run mean something.
 * `--baseline` adds another build of the gateway (its dist/src/main.js, e.g. from before a
 * change) as a peer named "baseline"; `--only gateway,baseline` measures just those systems, and
 * `--rows h2Rps,h2Cpu` just those rows (metric keys, workloads.ts).
 * Then the page load a user feels (page-load.ts: JupyterLab 4 in headless Chromium through each
 * system, 5 rounds, 1 with --quick, or --rounds) in a second table; `--page-load-only` runs just
 * that part, `--skip-page-load` leaves it out; `--only` names its reference "jupyter-direct".
 */
const { values: args } = parseArgs({ options: { quick: { type: "boolean" }, rounds: { type: "string" }, out: { type: "string" }, baseline: { type: "string" }, only: { type: "string" }, rows: { type: "string" }, ...PAGE_LOAD_OPTIONS } });
if (args["page-load-only"] && args["skip-page-load"]) throw new Error("--page-load-only and --skip-page-load exclude each other; give one of them");
const effort = args.quick ? QUICK : FULL;
const rounds = Number(args.rounds ?? (args.quick ? 1 : 3));
const out = args.out ?? "bench-results.md";
const BASELINE = args.baseline ? [gatewaySystem("baseline", resolve(args.baseline))] : [];
const only = args.only?.split(",");
const rows = args.rows?.split(",");
const unknownRow = rows?.find((key) => !METRICS.some((m) => m.key === key));
if (unknownRow) throw new Error(`--rows: no row ${unknownRow}; the rows are ${METRICS.map((m) => m.key).join(", ")}`);
const PEERS = [...BASELINE, NGINX, CADDY, CHP].filter((s) => !only || only.includes(s.name));
const REFERENCES = [DIRECT].filter((s) => !only || only.includes(s.name));
const SYSTEMS: readonly BenchSystem[] = args["page-load-only"] ? [] : [GATEWAY, ...PEERS, ...REFERENCES];

const dir = mkdtempSync(join(tmpdir(), "gateway-bench-"));
const certificate = makeEcdsaCertificate(dir);
const upstream = startProcess(process.execPath, [BENCH_UPSTREAM_MAIN, certificate.certPath, certificate.keyPath]);
// Every process the bench started (upstream, the system being measured) is stopped by PID, also
// when a system fails to start or on Ctrl-C / SIGTERM; wrk and s_time end by their own -d / -time.
const cleanUp = async (): Promise<void> => {
  await stopStartedProcesses();
  rmSync(dir, { recursive: true, force: true });
};
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) process.once(signal, () => void cleanUp().then(() => process.exit(code)));

try {
  const ports = await waitFor("the bench upstream", () => {
    const line = upstream.output().split("\n").find((l) => l.startsWith("{"));
    return line ? (JSON.parse(line) as { http: number; https: number }) : undefined;
  });
  const ctx: BenchContext = { dir, certPath: certificate.certPath, keyPath: certificate.keyPath, upstreamHttpPort: ports.http, upstreamHttpsPort: ports.https, upstreamPid: upstream.pid };
  const client = { ca: readFileSync(certificate.caPath, "utf8"), caPath: certificate.caPath, name: "localhost" };
  const samples: Samples = new Map();
  const started = performance.now();
  for (let round = 1; round <= rounds; round++) {
    for (const system of SYSTEMS) {
      process.stderr.write(`round ${round}/${rounds}: ${system.name}… `);
      const running = await system.start(ctx);
      let values: Record<string, number>;
      try {
        await sleep(500);
        values = await measure(running, client, effort, rows);
        record(samples, system.name, values);
      } finally {
        await running.stop();
      }
      if (!rows || rows.some((key) => key.endsWith("AllCores"))) record(samples, system.name, await measureAllCores(system, ctx, values));
      process.stderr.write("done\n");
    }
  }
  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  const header = `${rounds} interleaved round(s)${args.quick ? " (--quick: proves it runs; numbers too short to mean much)" : ""}, ${minutes} min, Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), medians (min-max).`;
  const table = SYSTEMS.length > 0 ? renderTable(samples, METRICS.filter((m) => !rows || rows.includes(m.key)), GATEWAY.name, PEERS.map((s) => s.name), REFERENCES.map((s) => s.name), header) : "";
  process.stdout.write(table);
  writeFileSync(out, table);

  // The page load a user feels (page-load.ts), in a table of its own after the workloads'.
  if (!args["skip-page-load"]) {
    const pageRounds = Number(args.rounds ?? (args.quick ? 1 : 5));
    const pageTable = await benchPageLoad({
      ctx,
      caPath: certificate.caPath,
      subject: GATEWAY,
      peers: PEERS,
      withReference: !only || only.includes("jupyter-direct"),
      rounds: pageRounds,
      kernelTries: args.quick ? PAGE_LOAD_KERNEL_TRIES.quick : PAGE_LOAD_KERNEL_TRIES.full,
      warmUp: !args.quick,
      header: (pageMinutes, protocols) => `Page load: JupyterLab 4 in headless Chromium, ${pageRounds} interleaved round(s)${args.quick ? " (--quick: proves it runs; no warm-up load, so the first system pays for Jupyter's first page)" : ""}, ${pageMinutes} min, ${cpus().length} cores; protocols: ${protocols}; medians (min-max).`,
    });
    process.stdout.write(`${table ? "\n" : ""}${pageTable}`);
    appendFileSync(out, `${table ? "\n" : ""}${pageTable}`);
  }
  process.stderr.write(`written to ${out}\n`);
} finally {
  await cleanUp();
}

/**
 * The all-cores rows: the system started to use every core (the gateway with `workers: auto`)
 * and measured with the small GETs; a system that already does so (nginx, Caddy) or cannot (CHP)
 * keeps the small-GET values it just measured.
 */
async function measureAllCores(system: BenchSystem, ctx: BenchContext, measured: Record<string, number>): Promise<Record<string, number>> {
  let values = { rps: measured.rps ?? NaN, p99: measured.p99 ?? NaN, cpu: measured.cpu ?? NaN };
  if (system.startAllCores) {
    const running = await system.startAllCores(ctx);
    try {
      await sleep(500);
      values = await smallGets(running, effort);
    } finally {
      await running.stop();
    }
  }
  return { rpsAllCores: values.rps, p99AllCores: values.p99, cpuAllCores: values.cpu };
}

/** A test CA and an ECDSA P-256 leaf for localhost, with openssl. */
function makeEcdsaCertificate(folder: string): { caPath: string; certPath: string; keyPath: string } {
  const openssl = requireTool("/usr/bin/openssl", "openssl");
  const p = (name: string): string => join(folder, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  execFileSync(openssl, ["req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=gateway bench CA"], { stdio: "ignore" });
  execFileSync(openssl, ["req", ...ec, "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=localhost"], { stdio: "ignore" });
  writeFileSync(p("leaf.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  execFileSync(openssl, ["x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", p("leaf.ext"), "-out", p("leaf.pem")], { stdio: "ignore" });
  return { caPath: p("ca.pem"), certPath: p("leaf.pem"), keyPath: p("leaf.key") };
}
