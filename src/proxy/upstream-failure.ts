/** What the client is told when the notebook cannot be reached. */
export interface UpstreamFailure {
  readonly status: 502 | 504;
  /** Stable name for logs and metrics. */
  readonly kind: "unreachable" | "timeout" | "reset" | "failed";
  readonly title: string;
  /** What is wrong and the command that fixes it. */
  readonly hint: string;
}

/** The one mapping from an upstream error to a response. */
export function describeUpstreamFailure(err: NodeJS.ErrnoException, upstream: URL): UpstreamFailure {
  const tunnel = `ssh -N -L 127.0.0.1:${upstream.port || 80}:localhost:8888 workstation`;
  switch (err.code) {
    case "ECONNREFUSED":
    case "EHOSTUNREACH":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return {
        status: 502,
        kind: "unreachable",
        title: "The notebook is not reachable",
        hint: `Nothing answers at ${upstream.host}. Is the SSH tunnel up (${tunnel}) and is Jupyter running on the workstation (jupyter notebook --no-browser --port=8888)?`,
      };
    case "ETIMEDOUT":
      return {
        status: 504,
        kind: "timeout",
        title: "The notebook does not answer",
        hint: `The connection to ${upstream.host} is open but Jupyter sent nothing in time. The tunnel may be frozen (restart it: ${tunnel}) or the notebook server is stuck.`,
      };
    case "ECONNRESET":
    case "EPIPE":
      return {
        status: 502,
        kind: "reset",
        title: "The notebook closed the connection",
        hint: `The connection to ${upstream.host} was cut before an answer arrived. If the tunnel or the notebook was just restarted, reload this page.`,
      };
    default:
      return {
        status: 502,
        kind: "failed",
        title: "The notebook failed to answer",
        hint: `The request to ${upstream.host} failed. The gateway's log has the details.`,
      };
  }
}
