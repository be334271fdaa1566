import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, waitFor, type TestProcess } from "./processes.js";
import { requireTool } from "./tools.js";

/** A real Jupyter notebook 6.4 server on 127.0.0.1, password-protected, started by the test. */
export interface Jupyter {
  readonly port: number;
  readonly password: string | null;
  readonly process: TestProcess;
  /** Stops it by PID. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same state (cookie secret, files). */
  start(): Promise<void>;
}

const PYTHON = "/usr/bin/python3";

/** `password: null` starts an open notebook (no password, no token): the exposure the gateway must refuse. */
export async function startJupyter(dir: string, password: string | null = "correct horse battery staple"): Promise<Jupyter> {
  requireTool(PYTHON, "python3");
  try {
    execFileSync(PYTHON, ["-c", "import notebook"], { stdio: "pipe" });
  } catch {
    throw new Error("the Jupyter notebook is not installed for /usr/bin/python3; install it with: apt-get install -y jupyter-notebook");
  }
  for (const sub of ["home", "cfg", "run", "data", "ipy", "nb"]) mkdirSync(join(dir, sub), { recursive: true });
  // The hash goes in the config file, so the password is never on a command line.
  const hash = password === null ? "" : execFileSync(PYTHON, ["-c", "import sys; from notebook.auth import passwd; print(passwd(sys.stdin.read()))"], { input: password }).toString().trim();
  writeFileSync(join(dir, "cfg", "jupyter_notebook_config.json"), JSON.stringify({ NotebookApp: { password: hash } }));
  const port = await freePort();
  const env = { ...process.env, HOME: join(dir, "home"), JUPYTER_CONFIG_DIR: join(dir, "cfg"), JUPYTER_RUNTIME_DIR: join(dir, "run"), JUPYTER_DATA_DIR: join(dir, "data"), IPYTHONDIR: join(dir, "ipy") };
  const args = ["-m", "notebook", "--ip=127.0.0.1", `--port=${port}`, "--port-retries=0", "--no-browser", "--allow-root", `--notebook-dir=${join(dir, "nb")}`, "--NotebookApp.token="];

  let current: TestProcess | undefined;
  const jupyter: Jupyter = {
    port,
    password,
    get process() {
      if (!current) throw new Error("jupyter is not running");
      return current;
    },
    async start() {
      current = startProcess(PYTHON, args, { env });
      const proc = current;
      await waitFor(`jupyter on port ${port} (output: ${proc.output().slice(-500)})`, async () => {
        if (proc.child.exitCode !== null) throw new Error(`jupyter exited: ${proc.output().slice(-1000)}`);
        const res = await fetch(`http://127.0.0.1:${port}/api/status`).catch(() => undefined);
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
