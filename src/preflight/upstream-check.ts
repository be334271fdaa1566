import type { SiteConfig } from "../config/gateway-config.js";
import { probeNotebook } from "../tunnel/upstream-monitor.js";
import type { Finding } from "./finding.js";

/** What a TLS client meets when the server answers in plain HTTP. */
const PLAIN_HTTP_ERRORS = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "ERR_SSL_HTTP_REQUEST"]);

/**
 * Asks the notebook, as serve does, whether it answers and demands a password. A notebook that
 * answers nothing is a warning: the tunnel (serve's own, or a hand-run one) or Jupyter may just not
 * be up yet, and serve answers a page that says so meanwhile.
 */
export async function checkUpstream(site: SiteConfig, timeoutMs: number): Promise<Finding> {
  const at = `${site.position}: `;
  const name = site.hosts[0];
  const upstream = site.upstream.host;
  const probe = await probeNotebook(site, timeoutMs);
  switch (probe.notebook) {
    case "protected":
      return { level: "ok", text: `${name}: the notebook at ${upstream} answers and demands a password` };
    case "unprotected":
      return site.allowUnprotectedUpstream
        ? { level: "warning", text: `${at}${name}: the notebook at ${upstream} answers its API without a password; served anyway (allow_unprotected_upstream: true)` }
        : { level: "problem", text: `${at}${name}: the notebook at ${upstream} answers its API without a password: exposing it would give anyone a shell on the workstation. Run jupyter notebook password on the workstation and restart Jupyter (or set allow_unprotected_upstream: true if something else guards it)` };
    case "not-a-notebook":
      return site.allowUnprotectedUpstream
        ? { level: "warning", text: `${at}${name}: ${upstream} answers, but not like a Jupyter notebook server (GET ${site.baseUrl}api/kernels); served anyway (allow_unprotected_upstream: true)` }
        : { level: "problem", text: `${at}${name}: ${upstream} answers, but not like a Jupyter notebook server (GET ${site.baseUrl}api/kernels), so serve refuses it: check upstream:, set base_url: if Jupyter runs with one (e.g. /jupyter/), or allow_unprotected_upstream: true if this server guards itself` };
    default:
      if (probe.error && PLAIN_HTTP_ERRORS.has(probe.error) && site.upstream.protocol === "https:") {
        return { level: "problem", text: `${at}${name}: the notebook at ${upstream} speaks plain HTTP (the TLS handshake got ${probe.error}): write upstream: http://${upstream}` };
      }
      return site.tunnel
        ? { level: "warning", text: `${at}${name}: the notebook at ${upstream} is not reachable now (${probe.error}); gateway serve starts the tunnel to ${site.tunnel.ssh} itself` }
        : { level: "warning", text: `${at}${name}: nothing answers at ${upstream} (${probe.error}); start the notebook (and the tunnel to it, e.g. ssh -N -L 127.0.0.1:${site.upstream.port || 80}:localhost:8888 workstation), or add tunnel: so that serve keeps it up, or fix upstream:` };
  }
}
