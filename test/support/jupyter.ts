import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, startProcess, waitFor, type TestProcess } from "./processes.js";
import { requireTool } from "./tools.js";

/**
 * Which Jupyter a test runs: Debian's classic notebook 6.4 (`jupyter-notebook`), or what people run
 * today, JupyterLab 4 / Notebook 7 on jupyter_server 2, from the venv modern-jupyter-venv.sh caches.
 */
export type JupyterKind = "notebook-6.4" | "jupyterlab-4" | "notebook-7";

/** A real Jupyter server on 127.0.0.1, password-protected, started by the test. */
export interface Jupyter {
  readonly kind: JupyterKind;
  readonly port: number;
  readonly password: string | null;
  /** The token it also accepts (`?token=`, `Authorization: token …`, as VS Code sends it), "" for none. */
  readonly token: string;
  /** The page a browser lands on after logging in: /tree, or /lab for JupyterLab. */
  readonly homePath: string;
  readonly process: TestProcess;
  /** Stops it by PID. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same state (cookie secret, files). */
  start(): Promise<void>;
}

const DEBIAN_PYTHON = "/usr/bin/python3";
const VENV_SCRIPT = fileURLToPath(new URL("../../../test/support/modern-jupyter-venv.sh", import.meta.url));
const VENV_BUILD_TIMEOUT_MS = 300_000;

let venv: Promise<string> | undefined;

/**
 * The cached modern Jupyter venv's folder, built on first use (about 20-45 s) and then reused by
 * every run on this machine. Fails, never skips, when the local wheel index is not configured.
 */
export function modernJupyterVenv(): Promise<string> {
  venv ??= promisify(execFile)("bash", [VENV_SCRIPT], { timeout: VENV_BUILD_TIMEOUT_MS }).then(
    ({ stdout }) => stdout.trim().split("\n").pop() as string,
    (err: Error & { stderr?: string }) => {
      venv = undefined;
      throw new Error(`cannot build the modern Jupyter venv (JupyterLab 4, Notebook 7) with ${VENV_SCRIPT}: ${err.stderr?.trim() || err.message}`);
    },
  );
  return venv;
}

/** How to run one kind: its command, its password hash, the config file that holds the hash. */
interface Launch {
  readonly command: string;
  readonly args: (port: number, notebookDir: string, token: string) => string[];
  readonly hash: (password: string) => string;
  readonly configFile: string;
  readonly config: (hash: string, baseUrl: string) => unknown;
  readonly homePath: string;
}

function hashWith(python: string, module: string): (password: string) => string {
  return (password) => execFileSync(python, ["-c", `import sys; from ${module} import passwd; print(passwd(sys.stdin.read()))`], { input: password }).toString().trim();
}

async function launchFor(kind: JupyterKind): Promise<Launch> {
  if (kind === "notebook-6.4") {
    requireTool(DEBIAN_PYTHON, "python3");
    try {
      execFileSync(DEBIAN_PYTHON, ["-c", "import notebook"], { stdio: "pipe" });
    } catch {
      throw new Error("the Jupyter notebook is not installed for /usr/bin/python3; install it with: apt-get install -y jupyter-notebook");
    }
    return {
      command: DEBIAN_PYTHON,
      args: (port, nb, token) => ["-m", "notebook", "--ip=127.0.0.1", `--port=${port}`, "--port-retries=0", "--no-browser", "--allow-root", `--notebook-dir=${nb}`, `--NotebookApp.token=${token}`],
      hash: hashWith(DEBIAN_PYTHON, "notebook.auth"),
      configFile: "jupyter_notebook_config.json",
      config: (hash, baseUrl) => ({ NotebookApp: { password: hash, base_url: baseUrl } }),
      homePath: "/tree",
    };
  }
  const dir = await modernJupyterVenv();
  const app = kind === "jupyterlab-4" ? "lab" : "notebook";
  return {
    command: join(dir, "bin", "jupyter"),
    args: (port, nb, token) => [app, "--ip=127.0.0.1", `--port=${port}`, "--port-retries=0", "--no-browser", "--allow-root", `--ServerApp.root_dir=${nb}`, `--IdentityProvider.token=${token}`],
    hash: hashWith(join(dir, "bin", "python"), "jupyter_server.auth"),
    configFile: "jupyter_server_config.json",
    config: (hash, baseUrl) => ({ PasswordIdentityProvider: { hashed_password: hash }, ServerApp: { base_url: baseUrl } }),
    homePath: kind === "jupyterlab-4" ? "/lab" : "/tree",
  };
}

/**
 * `kind`: JupyterLab 4 by default, what people run today; notebook 6.4 where a test is about it.
 * `password: null` with no token starts an open notebook: the exposure the gateway must refuse.
 * `baseUrl`: Jupyter's base_url (default "/"), as people who serve it under a path set it.
 * `token`: also accept this token (a test token: it is on the command line); "" for none.
 */
export async function startJupyter(dir: string, password: string | null = "correct horse battery staple", kind: JupyterKind = "jupyterlab-4", baseUrl = "/", token = ""): Promise<Jupyter> {
  const launch = await launchFor(kind);
  for (const sub of ["home", "cfg", "run", "data", "ipy", "nb"]) mkdirSync(join(dir, sub), { recursive: true });
  // The hash goes in the config file, so the password is never on a command line.
  writeFileSync(join(dir, "cfg", launch.configFile), JSON.stringify(launch.config(password === null ? "" : launch.hash(password), baseUrl)));
  const port = await freePort();
  const env = { ...process.env, HOME: join(dir, "home"), JUPYTER_CONFIG_DIR: join(dir, "cfg"), JUPYTER_RUNTIME_DIR: join(dir, "run"), JUPYTER_DATA_DIR: join(dir, "data"), IPYTHONDIR: join(dir, "ipy") };
  const args = launch.args(port, join(dir, "nb"), token);

  let current: TestProcess | undefined;
  const jupyter: Jupyter = {
    kind,
    port,
    password,
    token,
    homePath: launch.homePath,
    get process() {
      if (!current) throw new Error("jupyter is not running");
      return current;
    },
    async start() {
      current = startProcess(launch.command, args, { env });
      const proc = current;
      await waitFor(`${kind} on port ${port} (output: ${proc.output().slice(-500)})`, async () => {
        if (proc.child.exitCode !== null) throw new Error(`${kind} exited: ${proc.output().slice(-1000)}`);
        const res = await fetch(`http://127.0.0.1:${port}${baseUrl}api/status`).catch(() => undefined);
        return res?.status === 403 || res?.status === 200 ? true : undefined;
      }, 30_000, 100);
    },
    async stop() {
      await current?.stop();
    },
  };
  await jupyter.start();
  return jupyter;
}
