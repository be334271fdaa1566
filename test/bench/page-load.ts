import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BrowserContext, Page } from "playwright-core";
import { browserHome, launchBrowserProcess, type BrowserProcess } from "../support/browser.js";
import { startJupyter, type Jupyter } from "../support/jupyter.js";
import { cpuMicros, rssKiB } from "./process-stats.js";
import { median, record, renderTable, type Samples } from "./report.js";
import type { BenchContext, BenchSystem } from "./systems.js";
import type { Metric } from "./workloads.js";

/**
 * The page load a user feels: headless Chromium (Debian's, trusting the bench CA) logs in with the
 * password through each system and loads JupyterLab 4.6 (`/lab`) from a real jupyter_server 2.21,
 * cold (a new browser context: empty cache, no open connection, only the login cookie) and warm
 * (the same tab loading `/lab` again), then runs `1+1` on a kernel from the page, over the kernel
 * WebSocket as JupyterLab does. Jupyter itself, over plain HTTP, is the reference.
 */
export const PAGE_LOAD_METRICS: readonly Metric[] = [
  { key: "labCold", label: "/lab cold load ms (p50)", higherIsBetter: false },
  { key: "labWarm", label: "/lab warm load ms", higherIsBetter: false },
  { key: "kernelRtt", label: "kernel execute RTT ms p50", higherIsBetter: false },
  { key: "cpuCold", label: "proxy CPU ms per cold load (process tree)", higherIsBetter: false },
  { key: "rss", label: "RSS after the loads, MiB (process tree)", higherIsBetter: false },
];

/** How many `1+1` round trips each round times (after one untimed), for the full run and --quick. */
export const PAGE_LOAD_KERNEL_TRIES = { full: 50, quick: 10 } as const;

/** The options run-bench adds: `--page-load-only` measures just these rows, `--skip-page-load` leaves them out. */
export const PAGE_LOAD_OPTIONS = { "page-load-only": { type: "boolean" }, "skip-page-load": { type: "boolean" } } as const;

const PASSWORD = "bench page-load password";
const JUPYTER_DIRECT = "jupyter-direct";
const LOAD_TIMEOUT_MS = 90_000;
/** After a cold load, time for JupyterLab's own follow-up requests and the cache writes before the warm load. */
const SETTLE_MS = 1_000;

export interface PageLoadOptions {
  /** The bench's context: its folder and certificate (for localhost); the upstream becomes Jupyter. */
  readonly ctx: BenchContext;
  readonly caPath: string;
  readonly subject: BenchSystem;
  readonly peers: readonly BenchSystem[];
  /** Whether Jupyter directly (the reference) is measured too. */
  readonly withReference: boolean;
  readonly rounds: number;
  readonly kernelTries: number;
  /** One untimed load through no proxy first, so that the first system measured does not pay for Jupyter's and Chromium's first page. */
  readonly warmUp: boolean;
  /** The line above the table. */
  readonly header: (minutes: string, protocols: string) => string;
}

/** One system in front of Jupyter, running: where the browser goes, and whose process tree is measured. */
interface Opened {
  readonly origin: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

interface Target {
  readonly name: string;
  open(): Promise<Opened>;
}

/** Runs the interleaved rounds (A B C D E, A B C D E, ...) and returns the markdown table. */
export async function benchPageLoad(options: PageLoadOptions): Promise<string> {
  const dir = join(options.ctx.dir, "page-load");
  let jupyter: Jupyter | undefined;
  let browser: BrowserProcess | undefined;
  try {
    jupyter = await startJupyter(join(dir, "jupyter"), PASSWORD, "jupyterlab-4");
    browser = await launchBrowserProcess(browserHome(dir, options.caPath), ["localhost"]);
    const ctx: BenchContext = { ...options.ctx, upstreamHttpPort: jupyter.port, upstreamPid: jupyter.process.pid };
    const targets: Target[] = [options.subject, ...options.peers].map((system) => ({
      name: system.name,
      async open() {
        const running = await system.start(ctx);
        return { origin: `https://localhost:${running.port}`, pid: running.pid, stop: () => running.stop() };
      },
    }));
    const direct: Target = { name: JUPYTER_DIRECT, open: async () => ({ origin: `http://127.0.0.1:${ctx.upstreamHttpPort}`, pid: undefined, stop: async () => undefined }) };
    if (options.withReference) targets.push(direct);
    if (options.warmUp) {
      process.stderr.write("page load, warm-up (untimed): Jupyter's first /lab, Chromium's first renderer… ");
      await measureTarget(browser, await direct.open(), 1);
      process.stderr.write("done\n");
    }

    const samples: Samples = new Map();
    const protocols = new Map<string, Set<string>>();
    const started = performance.now();
    for (let round = 1; round <= options.rounds; round++) {
      for (const target of targets) {
        process.stderr.write(`page load, round ${round}/${options.rounds}: ${target.name}… `);
        const opened = await target.open();
        try {
          const result = await measureTarget(browser, opened, options.kernelTries);
          record(samples, target.name, result.values);
          protocols.set(target.name, new Set([...(protocols.get(target.name) ?? []), ...result.protocols]));
          const { labCold, labWarm, kernelRtt } = result.values;
          process.stderr.write(`cold ${labCold?.toFixed(0)} ms, warm ${labWarm?.toFixed(0)} ms, kernel ${kernelRtt?.toFixed(1)} ms (${[...result.protocols].join(", ")})\n`);
        } finally {
          await opened.stop();
        }
      }
    }
    const minutes = ((performance.now() - started) / 60_000).toFixed(1);
    const protocolNote = [...protocols].map(([name, p]) => `${name} ${[...p].join("+")}`).join(", ");
    return renderTable(samples, PAGE_LOAD_METRICS, options.subject.name, options.peers.map((p) => p.name), options.withReference ? [JUPYTER_DIRECT] : [], options.header(minutes, protocolNote), { bestPeer: true });
  } finally {
    await browser?.close();
    await jupyter?.stop();
  }
}

interface TargetResult {
  readonly values: Record<string, number>;
  /** What Chromium spoke to the system (`nextHopProtocol`: h2, http/1.1). */
  readonly protocols: ReadonlySet<string>;
}

async function measureTarget(browser: BrowserProcess, opened: Opened, kernelTries: number): Promise<TargetResult> {
  const cookies = await logIn(browser, opened.origin);
  const context = await browser.newContext();
  try {
    await context.addCookies(cookies);
    await context.addInitScript(recordLabReady);
    const page = await context.newPage();
    const cpuBefore = opened.pid === undefined ? NaN : cpuMicros(opened.pid);
    const cold = await loadLab(page, opened.origin);
    const cpuCold = opened.pid === undefined ? NaN : (cpuMicros(opened.pid) - cpuBefore) / 1000;
    await sleep(SETTLE_MS);
    const warm = await loadLab(page, opened.origin);
    const rtts = await page.evaluate(kernelRoundTrips, kernelTries);
    const values: Record<string, number> = { labCold: cold.ms, labWarm: warm.ms, kernelRtt: median(rtts) };
    // Jupyter directly has no proxy whose CPU or memory would count. The CPU runs until the ready moment is seen (polled every 50 ms).
    if (opened.pid !== undefined) Object.assign(values, { cpuCold, rss: rssKiB(opened.pid) / 1024 });
    return { values, protocols: new Set([...cold.protocols, ...warm.protocols]) };
  } finally {
    await context.close();
  }
}

/**
 * Logs in with the password form, as a person does, in a context of its own, and returns its
 * cookies: the measured context then starts logged in but with an empty cache and no connection.
 * The login lands on /api/status (a small JSON answer) rather than loading JupyterLab there.
 */
async function logIn(browser: BrowserProcess, origin: string): Promise<Awaited<ReturnType<BrowserContext["cookies"]>>> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${origin}/login?next=${encodeURIComponent("/api/status")}`);
    await page.fill("input#password_input", PASSWORD);
    // The next page the tab loads, wherever the form's answer leads: a failed login shows the form again.
    await Promise.all([page.waitForEvent("load"), page.click("button#login_submit")]);
    if (new URL(page.url()).pathname !== "/api/status") throw new Error(`logging in through ${origin} did not lead to /api/status but to ${page.url()}: ${((await page.textContent("body")) ?? "").trim().slice(0, 300)}`);
    return await context.cookies();
  } finally {
    await context.close();
  }
}

/**
 * Loads /lab and waits until JupyterLab is ready for the user, as this script in the page records
 * it: the shell (`.jp-LabShell`) is in the page, the splash screen is fading out (JupyterLab
 * adds `splash-fade` once the app is restored), and the launcher's notebook card (which needs the
 * kernel specs from the server) is laid out. Its time is the page's `performance.now()` at that
 * moment: milliseconds since the navigation started.
 */
async function loadLab(page: Page, origin: string): Promise<{ ms: number; protocols: string[] }> {
  await page.goto(`${origin}/lab`, { waitUntil: "commit", timeout: LOAD_TIMEOUT_MS });
  const handle = await page.waitForFunction(() => (window as unknown as { __labReadyMs?: number }).__labReadyMs, undefined, { timeout: LOAD_TIMEOUT_MS, polling: 50 }).catch(async (err: Error) => {
    const shows = await page.evaluate(() => `${document.title}: ${(document.body?.innerText ?? "").trim().slice(0, 300)}`).catch(() => "(nothing readable)");
    throw new Error(`${origin}/lab was not ready (JupyterLab's shell, its splash fading, the launcher's notebook card) within ${LOAD_TIMEOUT_MS} ms; the page shows ${shows}`, { cause: err });
  });
  const ms = (await handle.jsonValue()) as number;
  const protocols = await page.evaluate(() => [...new Set(performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).map((e) => (e as PerformanceResourceTiming).nextHopProtocol).filter(Boolean))]);
  return { ms, protocols };
}

/** Runs in every page of a measured context, before JupyterLab's scripts (see loadLab). */
function recordLabReady(): void {
  if (!location.pathname.endsWith("/lab")) return;
  const isReady = (): boolean => {
    if (!document.querySelector(".jp-LabShell")) return false;
    const splash = document.getElementById("jupyterlab-splash");
    if (splash && !splash.classList.contains("splash-fade")) return false;
    const card = document.querySelector('.jp-LauncherCard[data-category="Notebook"]');
    return card !== null && card.getBoundingClientRect().width > 0;
  };
  const observer = new MutationObserver(() => {
    if (!isReady()) return;
    (window as unknown as { __labReadyMs?: number }).__labReadyMs = performance.now();
    observer.disconnect();
  });
  observer.observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ["class", "style"] });
}

/**
 * In the page, as JupyterLab's kernel client does: starts a python3 kernel (POST /api/kernels
 * with the _xsrf token), opens its channels WebSocket, waits for kernel_info, runs `1+1` once
 * untimed (checking the result is 2), then times `tries` execute_request → execute_reply round
 * trips; shuts the kernel down. Returns the round trips in ms.
 */
async function kernelRoundTrips(tries: number): Promise<number[]> {
  const xsrf = decodeURIComponent(/(?:^|; )_xsrf=([^;]*)/.exec(document.cookie)?.[1] ?? "");
  const headers = { "X-XSRFToken": xsrf, "Content-Type": "application/json" };
  const created = await fetch("/api/kernels", { method: "POST", headers, body: JSON.stringify({ name: "python3" }) });
  if (!created.ok) throw new Error(`POST /api/kernels answered ${created.status}`);
  const { id } = (await created.json()) as { id: string };
  try {
    const session = crypto.randomUUID();
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/kernels/${id}/channels?session_id=${session}`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("the kernel WebSocket failed to open"));
    });
    interface Message {
      channel: string;
      msg_type: string;
      parent_header: { msg_id?: string };
      content: { status?: string; data?: Record<string, string> };
    }
    const waiting = new Map<string, { reply?: Message; result?: Message; resolve(): void; needResult: boolean }>();
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as Message;
      const entry = waiting.get(message.parent_header.msg_id ?? "");
      if (!entry) return;
      if (message.channel === "shell") entry.reply = message;
      if (message.msg_type === "execute_result") entry.result = message;
      if (entry.reply && (!entry.needResult || entry.result)) entry.resolve();
    };
    const send = async (msgType: string, content: object, needResult = false): Promise<{ reply?: Message; result?: Message }> => {
      const msgId = crypto.randomUUID();
      const entry = { needResult, resolve: () => undefined } as { reply?: Message; result?: Message; resolve(): void; needResult: boolean };
      const done = new Promise<void>((resolve) => (entry.resolve = resolve));
      waiting.set(msgId, entry);
      ws.send(JSON.stringify({ header: { msg_id: msgId, msg_type: msgType, username: "bench", session, date: new Date().toISOString(), version: "5.3" }, parent_header: {}, metadata: {}, content, channel: "shell", buffers: [] }));
      await done;
      waiting.delete(msgId);
      return entry;
    };
    const execute = { code: "1+1", silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true };
    await send("kernel_info_request", {});
    const first = await send("execute_request", execute, true);
    if (first.reply?.content.status !== "ok" || first.result?.content.data?.["text/plain"] !== "2") throw new Error(`1+1 on the kernel gave ${JSON.stringify(first.result?.content ?? first.reply?.content)}`);
    const rtts: number[] = [];
    for (let i = 0; i < tries; i++) {
      const sent = performance.now();
      const { reply } = await send("execute_request", execute);
      rtts.push(performance.now() - sent);
      if (reply?.content.status !== "ok") throw new Error(`execute_request answered ${JSON.stringify(reply?.content)}`);
    }
    ws.close();
    return rtts;
  } finally {
    await fetch(`/api/kernels/${id}`, { method: "DELETE", headers });
  }
}
