import type { SiteConfig } from "../config/gateway-config.js";
import type { UpstreamHealth } from "../tunnel/upstream-monitor.js";

/** What the client is told when the notebook cannot be used. */
export interface UpstreamFailure {
  readonly status: 502 | 503 | 504;
  /** Stable name for logs and metrics. */
  readonly kind: "tunnel_down" | "notebook_down" | "unreachable" | "timeout" | "reset" | "invalid_answer" | "failed" | "unprotected" | "not_jupyter" | "restarting" | "busy";
  readonly title: string;
  /** What is wrong and the command that fixes it. */
  readonly hint: string;
}

/**
 * The one mapping from an upstream error (plus what the gateway knows of the tunnel) to a
 * response. "Tunnel down, reconnecting" is told apart from "the notebook does not answer"; an
 * error page the notebook itself sends passes through unchanged.
 */
export function describeUpstreamFailure(err: NodeJS.ErrnoException, site: SiteConfig, health: UpstreamHealth, now: Date): UpstreamFailure {
  const upstream = site.upstream;
  const port = upstream.port || "80";
  const tunnel = health.tunnel;
  if (err.code === "ETIMEDOUT") {
    return {
      status: 504,
      kind: "timeout",
      title: "The notebook does not answer in time",
      hint: `The connection to ${upstream.host} is open but nothing came back. ${site.tunnel ? "The tunnel may be frozen; the gateway rebuilds it within about 20 s." : `The tunnel may be frozen: restart it (ssh -N -R 127.0.0.1:${port}:localhost:8888 server on the workstation).`} If it persists, the notebook server is stuck: restart Jupyter on the workstation.`,
    };
  }
  if (site.tunnel && tunnel && tunnel.kind !== "up") {
    const detail = tunnel.kind === "reconnecting"
      ? `reconnecting (attempt ${tunnel.attempt + 1}, next in ${Math.max(0, Math.ceil((tunnel.nextAttemptAt.getTime() - now.getTime()) / 1000))} s); ssh said: ${tunnel.lastError}`
      : tunnel.kind === "connecting" ? `connecting (attempt ${tunnel.attempt})` : "stopped";
    return {
      status: 502,
      kind: "tunnel_down",
      title: "Tunnel down, reconnecting",
      hint: `The SSH tunnel to ${site.tunnel.ssh} is ${detail}. The gateway retries by itself: reload this page in a few seconds. If it keeps failing, check from this server: ssh -p ${site.tunnel.port} ${site.tunnel.ssh} true`,
    };
  }
  switch (err.code) {
    case "ECONNREFUSED":
    case "ECONNRESET":
    case "EPIPE":
    case "EHOSTUNREACH":
      if (site.tunnel) {
        return {
          status: 502,
          kind: "notebook_down",
          title: "The notebook does not answer",
          hint: `The tunnel to ${site.tunnel.ssh} is up, but nothing answers at ${site.tunnel.remote} on the workstation. Start Jupyter there: jupyter notebook --no-browser --port=${site.tunnel.remote.split(":").pop()}`,
        };
      }
      if (err.code === "ECONNREFUSED") {
        return {
          status: 502,
          kind: "unreachable",
          title: "The notebook is not reachable",
          hint: `Nothing answers at ${upstream.host}. Is the SSH tunnel up? From this server: ssh -N -L 127.0.0.1:${port}:localhost:8888 workstation; or from the workstation: ssh -N -R 127.0.0.1:${port}:localhost:8888 server (to keep it up: autossh -M 0 -N -o ServerAliveInterval=30 -o ExitOnForwardFailure=yes -R 127.0.0.1:${port}:localhost:8888 server). Is Jupyter running on the workstation (jupyter notebook --no-browser --port=8888)?`,
        };
      }
      return {
        status: 502,
        kind: "reset",
        title: "The notebook closed the connection",
        hint: `The connection to ${upstream.host} was cut before an answer arrived: the tunnel or the notebook was probably just restarted. Reload this page.`,
      };
    case "EPROTO":
      return {
        status: 502,
        kind: "invalid_answer",
        title: "The notebook's answer is not valid HTTP",
        hint: `What answered at ${upstream.host} sent something the gateway cannot pass on safely (${err.message}). Is it Jupyter? If it is, update it; if another program took the port, stop it and start Jupyter again.`,
      };
    default:
      return { status: 502, kind: "failed", title: "The notebook failed to answer", hint: `The request to ${upstream.host} failed. The gateway's log has the details.` };
  }
}

/** An answer the gateway gives instead of forwarding, with headers such as Retry-After. */
export interface Refusal extends UpstreamFailure {
  readonly headers?: Readonly<Record<string, string>>;
}

/** undici's error codes for what describeUpstreamFailure knows by errno. */
const UNDICI_CODES: Readonly<Record<string, string>> = {
  UND_ERR_HEADERS_TIMEOUT: "ETIMEDOUT",
  UND_ERR_BODY_TIMEOUT: "ETIMEDOUT",
  UND_ERR_CONNECT_TIMEOUT: "ETIMEDOUT",
  UND_ERR_SOCKET: "ECONNRESET",
};

/** undici's errors for an answer that breaks HTTP: llhttp's (HPE_*), and a response nobody asked for (an unsolicited 100). */
const PROTOCOL_ERRORS = /^HPE_|^UND_ERR_HEADERS_OVERFLOW$|^UND_ERR_RES_CONTENT_LENGTH_MISMATCH$/;
const PROTOCOL_SOCKET_ERRORS = new Set(["bad response", "bad upgrade"]);

/** The errno-style code of an upstream error, undici's own codes translated; EPROTO when the notebook's answer broke HTTP. */
export function errnoOf(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  if (PROTOCOL_ERRORS.test(code) || (code === "UND_ERR_SOCKET" && PROTOCOL_SOCKET_ERRORS.has(err.message))) return "EPROTO";
  return UNDICI_CODES[code] ?? ((err.cause as NodeJS.ErrnoException | undefined)?.code || code || undefined);
}

/** Errors after which whatever answers next may be another (restarted) notebook. */
export function isConnectionFailure(code: string | undefined): boolean {
  return code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE" || code === "EHOSTUNREACH" || code === "ETIMEDOUT";
}

/**
 * Why a request must not reach the notebook now, from what the gate knows: unless the site allows
 * an unprotected notebook, only one proven password-protected (since it last came up) is served.
 * The refusal says why: no password, not reachable (the probe's error tells the tunnel from the
 * notebook), not Jupyter at the configured base URL, or restarting.
 */
export function upstreamRefusal(site: SiteConfig, health: UpstreamHealth, now: Date): UpstreamFailure | null {
  if (site.allowUnprotectedUpstream || health.proven) return null;
  if (health.notebook === "unreachable") {
    const err = Object.assign(new Error(health.probeError ?? "unreachable"), { code: health.probeError ?? "ECONNREFUSED" });
    return describeUpstreamFailure(Object.assign(err, { code: errnoOf(err) }), site, health, now);
  }
  if (health.notebook === "not-a-notebook") {
    return {
      status: 502,
      kind: "not_jupyter",
      title: "This is not the notebook",
      hint: `${site.upstream.host} does not answer like a Jupyter server at ${site.baseUrl}api/kernels, so the gateway cannot check that it demands a password. If Jupyter runs with a base_url (e.g. --ServerApp.base_url=/jupyter/), set base_url: /jupyter/ for this site in gateway.yaml; if the upstream is meant to be this server and guards itself, set allow_unprotected_upstream: true.`,
    };
  }
  if (health.notebook !== "unprotected") {
    return { status: 502, kind: "restarting", title: "The notebook is restarting", hint: `The notebook at ${site.upstream.host} was just restarted or reconnected, and the gateway checks that it demands a password before anything passes. Reload this page in a few seconds.` };
  }
  return {
    status: 503,
    kind: "unprotected",
    title: "This notebook has no password",
    hint: `The notebook at ${site.upstream.host} answers its API without a password: anyone reaching this page would get a shell on the workstation, so the gateway does not expose it. On the workstation run: jupyter notebook password, then restart Jupyter. (If something else guards it, set allow_unprotected_upstream: true for this site.)`,
  };
}
