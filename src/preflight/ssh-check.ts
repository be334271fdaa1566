import { spawn } from "node:child_process";
import type { TunnelConfig } from "../config/gateway-config.js";
import { sshSessionArguments } from "../tunnel/ssh-tunnel.js";
import type { Finding } from "./finding.js";

/**
 * Logs in as the tunnel does (same options: BatchMode, the identity and known hosts files) and
 * runs `true`: proves that ssh authenticates without a prompt before serve depends on it.
 */
export function checkSshLogin(tunnel: TunnelConfig, at: string, timeoutMs: number, sshPath: string): Promise<Finding> {
  const target = `ssh ${tunnel.ssh} -p ${tunnel.port}`;
  return new Promise((resolve) => {
    const child = spawn(sshPath, sshSessionArguments(tunnel, "true"), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ level: "problem", text: `${at}${target}: ${err.code === "ENOENT" ? `${sshPath} not found; install the OpenSSH client (apt-get install openssh-client)` : err.message}` });
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ level: "ok", text: `${target}: logs in without a prompt (the tunnel's options)` });
      const said = stderr.trim().split("\n").pop()?.trim() || (signal ? `no answer within ${timeoutMs / 1000} s` : `exit status ${code}`);
      resolve({ level: "problem", text: `${at}${target} fails: ${said}; ${sshRemedy(stderr, tunnel)}` });
    });
  });
}

/** What to do about what ssh said. */
function sshRemedy(stderr: string, tunnel: TunnelConfig): string {
  const host = tunnel.ssh.replace(/^.*@/, "");
  const key = tunnel.identityFile ?? "the gateway user's key (~/.ssh/id_ed25519)";
  if (/UNPROTECTED PRIVATE KEY FILE/.test(stderr)) return `ssh ignores a key others can read: chmod 600 ${key}`;
  if (/Permission denied/.test(stderr)) return `the workstation refused the key: add ${key}.pub to ~/.ssh/authorized_keys of ${tunnel.ssh.includes("@") ? tunnel.ssh.replace(/@.*$/, "") : "that user"} there (ssh-copy-id -i ${key} -p ${tunnel.port} ${tunnel.ssh}), or fix tunnel.identity_file`;
  if (/Host key verification failed|host key .* (is not known|has changed)|IDENTIFICATION HAS CHANGED/i.test(stderr)) {
    return `the workstation's host key is not the one in ${tunnel.knownHostsFile ?? "~/.ssh/known_hosts"}: compare its fingerprint, then add it (ssh-keyscan -p ${tunnel.port} ${host} >> ${tunnel.knownHostsFile ?? "~/.ssh/known_hosts"})`;
  }
  if (/Could not resolve hostname/.test(stderr)) return `fix the host name in tunnel.ssh (${host}) or its DNS`;
  if (/Connection refused/.test(stderr)) return `nothing accepts SSH on ${host} port ${tunnel.port}: start sshd there, or fix tunnel.port`;
  if (/timed out|No route to host|Network is unreachable/.test(stderr) || stderr.trim() === "") return `${host} port ${tunnel.port} does not answer: check the address, tunnel.port and firewalls on the way`;
  return "run the same ssh by hand to see why";
}
