import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, waitFor, type TestProcess } from "./processes.js";
import { requireTool } from "./tools.js";
import { connect } from "node:net";

/** A real OpenSSH server on 127.0.0.1 with a throwaway host key and one authorized client key. */
export interface Sshd {
  readonly port: number;
  /** Private key the gateway's ssh uses (tunnel.identity_file). */
  readonly identityFile: string;
  /** known_hosts holding this sshd's host key (tunnel.known_hosts_file). */
  readonly knownHostsFile: string;
  readonly process: TestProcess;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

export async function startSshd(dir: string): Promise<Sshd> {
  requireTool(SSHD, "openssh-server");
  const keygen = requireTool("/usr/bin/ssh-keygen", "openssh-client");
  mkdirSync(dir, { recursive: true });
  mkdirSync("/run/sshd", { recursive: true });
  const hostKey = join(dir, "host_ed25519");
  const identityFile = join(dir, "client_ed25519");
  execFileSync(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  execFileSync(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", identityFile]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(`${identityFile}.pub`));
  const port = await freePort();
  const knownHostsFile = join(dir, "known_hosts");
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
  const config = join(dir, "sshd_config");
  writeFileSync(config, [
    "ListenAddress 127.0.0.1",
    `HostKey ${hostKey}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "StrictModes no",
    "AllowTcpForwarding yes",
    "UsePAM no",
    "",
  ].join("\n"));

  let current: TestProcess | undefined;
  const sshd: Sshd = {
    port,
    identityFile,
    knownHostsFile,
    get process() {
      if (!current) throw new Error("sshd is not running");
      return current;
    },
    async start() {
      current = startProcess(SSHD, ["-D", "-e", "-f", config, "-p", String(port)]);
      const proc = current;
      await waitFor(`sshd on ${port} (output: ${proc.output()})`, () => {
        if (proc.child.exitCode !== null) throw new Error(`sshd exited: ${proc.output()}`);
        return new Promise<true | undefined>((resolve) => {
          const s = connect({ host: "127.0.0.1", port }, () => {
            s.destroy();
            resolve(true);
          });
          s.on("error", () => resolve(undefined));
        });
      }, 10_000);
    },
    async stop() {
      await current?.stop();
    },
  };
  await sshd.start();
  return sshd;
}

/** PIDs of sshd's per-connection processes (children of the listener), to freeze a session. */
export function sessionPids(listenerPid: number): number[] {
  try {
    return readFileSync(`/proc/${listenerPid}/task/${listenerPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
