import type { LoginLockout } from "../guard/login-throttle.js";
import type { MetricsSnapshot } from "../platform/metrics.js";
import type { TunnelState } from "../tunnel/ssh-tunnel.js";

/** A tunnel's state by upstream key (UpstreamMonitor's); its Dates cross as ISO strings. */
export type TunnelStateMessage = readonly [key: string, state: TunnelState];

/**
 * The IPC messages between the primary and its workers (`workers:` 2 or more), in one file so
 * both sides compile against the same shapes. They cross node:cluster's channel as JSON.
 */

/** A certificate to serve for `hosts`, as SniContexts.set takes it. */
export interface CertificateMessage {
  readonly hosts: readonly string[];
  readonly certPem: string;
  readonly keyPem: string;
  readonly isDefault: boolean;
  readonly clientCaPem: string | null;
}

/** What the primary tells a worker. */
export type ToWorker =
  /** First message: the config the primary validated (its text: the worker parses the same bytes), the port to share, what to serve with. */
  | { readonly type: "start"; readonly configFile: string; readonly configText: string; readonly httpsPort: number; readonly ticketKeys: string; readonly certificates: readonly CertificateMessage[]; readonly revokedSerials: readonly string[]; readonly tunnels: readonly TunnelStateMessage[] }
  | ({ readonly type: "certificate" } & CertificateMessage)
  /** Session ticket keys (48 bytes, base64), the same in every worker so a ticket resumes on any of them. */
  | { readonly type: "ticket-keys"; readonly ticketKeys: string }
  | { readonly type: "revocations"; readonly revokedSerials: readonly string[] }
  /** The primary runs the tunnels; workers show their state on failure pages. */
  | { readonly type: "tunnel"; readonly tunnel: TunnelStateMessage }
  /** A reload the primary applied: the new config's text; the access log is reopened too. */
  | { readonly type: "reload"; readonly configText: string }
  | { readonly type: "login-verdict"; readonly id: number; readonly lockout: LoginLockout | null }
  | { readonly type: "metrics-request"; readonly id: number }
  /** Stop accepting, finish what is in flight (timeouts.drain), exit. */
  | { readonly type: "drain" };

/** What a worker tells the primary. `site` is a site's first name. */
export type FromWorker =
  /** The worker listens for messages now (one sent before would be lost): the primary answers with "start". */
  | { readonly type: "hello" }
  | { readonly type: "ready"; readonly httpsPort: number }
  /** Could not start (e.g. the port is taken): the primary's start fails with this. */
  | { readonly type: "failed"; readonly code: string; readonly error: string }
  /** A login attempt arrived: may it pass? Let through, it counts as in flight until settled. */
  | { readonly type: "login-check"; readonly id: number; readonly site: string; readonly address: string }
  | { readonly type: "login-settle"; readonly site: string; readonly address: string; readonly clientLeftFirst: boolean }
  | { readonly type: "login-record"; readonly site: string; readonly address: string; readonly status: number }
  | { readonly type: "metrics"; readonly id: number; readonly snapshot: MetricsSnapshot };
