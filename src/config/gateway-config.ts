/**
 * The gateway's configuration, parsed from gateway.yaml once by `loadConfig`: fully defaulted,
 * paths absolute, URLs parsed. Nothing downstream re-reads YAML or re-applies defaults.
 */
export interface GatewayConfig {
  /** Absolute path of the gateway.yaml this came from. */
  readonly file: string;
  /** The YAML text this was parsed from: workers (`workers:` 2 or more) parse the bytes the primary validated. */
  readonly text: string;
  readonly listen: ListenConfig;
  /** Folder for the account key, certificates, the local CA and state; kept 0700. Default /var/lib/gateway. */
  readonly storageDir: string;
  /** Loopback admin endpoint (/healthz, /status, /metrics), or null when `admin: false`. Default 127.0.0.1:2019. */
  readonly admin: { readonly host: string; readonly port: number } | null;
  readonly acme: AcmeConfig;
  readonly logs: LogsConfig;
  readonly timeouts: TimeoutsConfig;
  /**
   * Worker processes that terminate TLS and proxy (`workers:`, "auto" resolved to the cores this
   * process may run on). 1 (the default): the gateway serves in its one process, as before workers
   * existed. From 2: a primary (certificates, tunnels, login guard, admin) and this many workers.
   */
  readonly workers: number;
  /** At least one; every public name appears in exactly one site. */
  readonly sites: readonly SiteConfig[];
  /** Where each of these settings is written ("gateway.yaml:4:10"), or null when it is the default: for `gateway check`'s messages. */
  readonly positions: Readonly<Record<PositionedSetting, string | null>>;
}

/** Top-level settings whose place in gateway.yaml `gateway check` names when the machine disagrees with them. */
export type PositionedSetting = "listen.https" | "listen.http" | "admin" | "acme.directory";

export interface ListenConfig {
  /** Address both listeners bind. Default 0.0.0.0 (all interfaces). */
  readonly address: string;
  /** HTTPS port. Default 443; 0 to 65535, 0 picking a free port (tests). */
  readonly httpsPort: number;
  /** Port for ACME HTTP-01 answers and the redirect to https; null when `http: false`. Default 80. */
  readonly httpPort: number | null;
}

/** Where and how the gateway logs. */
export interface LogsConfig {
  /** Event log lines on stdout: JSON (default) or logfmt. */
  readonly format: "json" | "logfmt";
  /**
   * Access log in nginx's combined format (for goaccess, fail2ban): a file path (absolute, or
   * relative to gateway.yaml), "stdout", or null when off (the default). Reopened on SIGHUP, for logrotate.
   */
  readonly access: string | null;
}

export interface AcmeConfig {
  /** Account contact; optional for Let's Encrypt, which no longer sends expiry mail. */
  readonly email: string | null;
  /** The ACME directory. Default Let's Encrypt production. */
  readonly directoryUrl: URL;
  /** Which challenge proves control of a name. Default http-01. */
  readonly challenge: "http-01" | "tls-alpn-01";
  /**
   * DNS servers for the gateway's own check of its HTTP-01 challenge URL before the CA's
   * (IP or IP:port, as dns.Resolver#setServers takes them). Empty (the default): the system's.
   */
  readonly resolvers: readonly string[];
}

/** Where a site's certificate comes from. */
export type TlsSource =
  /** Obtained and renewed over ACME (the default). */
  | { readonly kind: "acme" }
  /** Issued by a local CA kept in storage, like Caddy's `tls internal`: for localhost and LAN names. */
  | { readonly kind: "internal" }
  /** Files the user manages (e.g. certbot's); reloaded when they change. */
  | { readonly kind: "files"; readonly certFile: string; readonly keyFile: string };

/** One public site: the names a browser uses and the notebook behind them. */
export interface SiteConfig {
  /** Lower-case DNS names (or IP literals), without a trailing dot, this site answers for; at least one, the first its primary name. */
  readonly hosts: readonly string[];
  /** The notebook, usually the tunnel's local end: origin only (scheme, host, port). */
  readonly upstream: URL;
  readonly tls: TlsSource;
  /** Optional `ssh -N -L` the gateway keeps up to reach the upstream. */
  readonly tunnel: TunnelConfig | null;
  /**
   * Origins allowed to embed the site in a frame (CSP frame-ancestors, besides 'self').
   * Empty (the default) forbids framing by other sites, against clickjacking.
   */
  readonly frameAncestors: readonly string[];
  /**
   * Serve a notebook whose API answers without a password. Default false: such a notebook is an
   * open shell on the workstation, so the gateway refuses to expose it.
   */
  readonly allowUnprotectedUpstream: boolean;
  /**
   * The notebook's base URL (Jupyter's base_url), starting and ending with "/"; default "/".
   * Where the gateway asks the notebook whether it demands a password (<base_url>api/kernels):
   * an upstream that does not answer like Jupyter there is refused, so it must match.
   */
  readonly baseUrl: string;
  /** Brute-force protection for the notebook's login form. */
  readonly loginGuard: LoginGuardConfig;
  /**
   * Client addresses (IPs or CIDR ranges, IPv4 and IPv6) allowed to reach the site; empty (the
   * default) allows every address not denied. No two entries are the same range.
   */
  readonly allow: readonly AddressRange[];
  /** Client addresses refused, even when also allowed. */
  readonly deny: readonly AddressRange[];
  /**
   * Whether browsers must present a client certificate from `gateway client-cert add` (mutual
   * TLS) as a second factor. Default false.
   */
  readonly clientCertificatesRequired: boolean;
  /** Where in gateway.yaml this site is declared, for messages ("gateway.yaml:14:5"). */
  readonly position: string;
}

/**
 * An allow/deny entry: the addresses whose first `prefixLength` bits are those of `address`.
 * `address` has no bit set past the prefix (10.0.0.1/8 is refused, not widened).
 */
export interface AddressRange {
  readonly family: "ipv4" | "ipv6";
  /** Dotted IPv4, or IPv6 in its canonical form (RFC 5952). */
  readonly address: string;
  /** 32 (IPv4) or 128 (IPv6) for a single address. */
  readonly prefixLength: number;
}

/**
 * Failed logins are counted per client address and over all addresses within a sliding window;
 * past a limit, further attempts get 429 and never reach the notebook (whose argon2 check costs
 * ~200 ms of its only event loop). A successful login clears that address.
 */
export interface LoginGuardConfig {
  /** Failures one address may make per window. Default 5; 1 to 1000. */
  readonly maxFailuresPerAddress: number;
  /** Failures all addresses together may make per window (slow distributed guessing). Default 100; 1 to 10000 (each is kept in storage until it leaves the window). */
  readonly maxFailuresTotal: number;
  /** The sliding window, which is also the longest a locked-out address waits. Default 15 minutes; 1 minute to 1 day. */
  readonly windowMs: number;
  /** Paths of login forms (POSTs counted), matched on the path before any "?"; at least one. Default ["/login"]. */
  readonly paths: readonly string[];
}

export const DEFAULT_LOGIN_GUARD: LoginGuardConfig = { maxFailuresPerAddress: 5, maxFailuresTotal: 100, windowMs: 15 * 60_000, paths: ["/login"] };

/** `ssh -N -L 127.0.0.1:<upstream port>:<remote> -p <port> <ssh>`, run and supervised by the gateway. */
export interface TunnelConfig {
  /** Destination as for ssh: [user@]host. */
  readonly ssh: string;
  /** sshd port on the workstation. Default 22; 1 to 65535. */
  readonly port: number;
  /** The notebook as the workstation sees it (host:port). Default localhost:<upstream port>. */
  readonly remote: string;
  /** Private key file for ssh -i; null uses ssh's defaults. */
  readonly identityFile: string | null;
  /** Known hosts file the workstation's host key is checked against (StrictHostKeyChecking=yes); null uses ssh's defaults. */
  readonly knownHostsFile: string | null;
}

/**
 * Idle and drain timers, in milliseconds (`timeouts:` in gateway.yaml). Idle timers are reset by
 * every byte, so a slow big transfer never hits them; WebSockets have none once open. The ranges
 * are in gateway-yaml-schema.ts; every value fits a Node timer (under 2^31 ms).
 */
export interface TimeoutsConfig {
  /** A client must send its request headers (and finish the TLS handshake) within this (slowloris). Default 20 s; 1 s to 2 min. */
  readonly headersMs: number;
  /**
   * A kept-alive or otherwise idle client connection is closed after this. Default 300 s; 5 s to
   * 1 h, and longer than upstreamIdleMs: a client waiting for the notebook is idle meanwhile.
   */
  readonly clientIdleMs: number;
  /** An upstream that sends no byte for this long is abandoned: 504 (also for a WebSocket upgrade before its 101). Default 120 s; 1 s to 30 min. */
  readonly upstreamIdleMs: number;
  /** How long SIGTERM waits for in-flight requests before closing what is left. Default 10 s; 1 s to 10 min. */
  readonly drainMs: number;
}

/**
 * Caps a one-person notebook never meets, so that a flood or a stuck notebook cannot exhaust the
 * gateway or the tunnel (each upstream connection can be an SSH channel). Past them the answer is
 * immediate: 503 with Retry-After, or (for TCP connections past the server cap) a closed socket.
 */
export const LIMITS = {
  /** Client connections the HTTPS listener holds at once (nginx's default worker_connections is 512 per worker). */
  clientConnections: 1024,
  /** Client connections from one address (a browser opens ~6, plus one per kernel or terminal tab). */
  clientConnectionsPerAddress: 128,
  /** Connections to one notebook (through its tunnel). */
  upstreamConnections: 64,
  /** Requests waiting for one of those connections; more get 503 at once instead of queueing. */
  queuedRequestsPerUpstream: 256,
  /** Open WebSockets (kernels, terminals) per site. */
  webSocketsPerSite: 256,
  /** Header fields in one request (Apache's LimitRequestFields; a browser sends ~20); more get 431. Their total size is Node's 16 KiB. */
  requestHeaders: 100,
} as const;

export const DEFAULT_TIMEOUTS: TimeoutsConfig = { headersMs: 20_000, clientIdleMs: 300_000, upstreamIdleMs: 120_000, drainMs: 10_000 };
