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
export type PositionedSetting = "listen.https" | "listen.http" | "admin" | "acme.directory" | "acme.profile";

export interface ListenConfig {
  /** Address both listeners bind. Default 0.0.0.0 (all interfaces). */
  readonly address: string;
  /** HTTPS port. Default 443; 0 to 65535, 0 picking a free port (tests). */
  readonly httpsPort: number;
  /** Port for ACME HTTP-01 answers and the redirect to https; null when `http: false`. Default 80. */
  readonly httpPort: number | null;
  /**
   * Whether listen.https offers HTTP/2 (ALPN h2) next to HTTP/1.1. Default true: every browser
   * speaks it, and many small requests share one connection. WebSockets always use HTTP/1.1.
   */
  readonly http2: boolean;
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

/** An ACME CA: its directory, the account's contact there, and the account binding it may require. */
export interface AcmeCa {
  /** Account contact; optional for Let's Encrypt, which no longer sends expiry mail. A fallback's defaults to acme.email. */
  readonly email: string | null;
  /** The ACME directory. Default Let's Encrypt production. */
  readonly directoryUrl: URL;
  /** External Account Binding, for CAs that only issue to accounts bound to one of theirs (ZeroSSL, Google Trust Services); null: none. */
  readonly eab: ExternalAccountBinding | null;
}

/**
 * RFC 8555 §7.3.4: the new ACME account is bound to an account at the CA by a MAC over the
 * account key, made with a key the CA hands out. Needed once, when the account is registered.
 */
export interface ExternalAccountBinding {
  /** The key identifier the CA gave. */
  readonly kid: string;
  /** The HMAC key (base64url, as the CA gives it), read from `hmacKeyFile` at load. A secret: never in messages or logs. */
  readonly hmacKey: string;
  /** Absolute path of the file it was read from (0600). */
  readonly hmacKeyFile: string;
}

/** A CA tried when the ones before it failed. */
export interface FallbackCa extends AcmeCa {
  /** Where its directory is written ("gateway.yaml:9:18"), for `gateway check`'s messages. */
  readonly position: string;
}

export interface AcmeConfig extends AcmeCa {
  /**
   * CAs tried in order, for an order the primary (directoryUrl) could not fill after its retries:
   * unreachable, 5xx, rate limited, refused. Not after a failed challenge, which says something
   * about this server that every CA would find. Every order starts at the primary again. Default none.
   */
  readonly fallbacks: readonly FallbackCa[];
  /** Which challenge proves control of a name. Default http-01. */
  readonly challenge: "http-01" | "tls-alpn-01" | "dns-01";
  /** How dns-01 publishes its TXT records: set exactly when `challenge` is dns-01. */
  readonly dns: DnsChallengeConfig | null;
  /**
   * The ACME profile (`profile` in newOrder, draft-ietf-acme-profiles) every ACME site asks for
   * unless it names its own; null (the default) asks for none, so the CA's default applies, except
   * that a site with an IP address asks for `shortlived` when the CA offers it (Let's Encrypt
   * issues for IP addresses only with that profile). An order fails when the CA does not offer it.
   */
  readonly profile: string | null;
  /**
   * DNS servers for the gateway's own check of its HTTP-01 challenge URL before the CA's
   * (IP or IP:port, as dns.Resolver#setServers takes them). Empty (the default): the system's.
   */
  readonly resolvers: readonly string[];
}

/** `acme.dns`: a dynamic-update server, or the user's hook scripts. */
export type DnsChallengeConfig = DnsUpdateConfig | DnsHookConfig;

/** The HMAC algorithms of TSIG keys the gateway signs with (RFC 8945 §6; hmac-md5 is left out). */
export type TsigAlgorithm = "hmac-sha1" | "hmac-sha224" | "hmac-sha256" | "hmac-sha384" | "hmac-sha512";

/** A DNS server's address: an IP or a name (resolved by the system at each use), and its port. */
export interface DnsServer {
  readonly host: string;
  /** Default 53. */
  readonly port: number;
}

/** dns-01 over RFC 2136 dynamic updates signed with TSIG. */
export interface DnsUpdateConfig {
  readonly kind: "rfc2136";
  /** The zone's primary server, which takes the updates and is asked until it serves the record. */
  readonly server: DnsServer;
  /** The zone holding the names (e.g. example.com); null (the default): found with an SOA query. */
  readonly zone: string | null;
  /** The TSIG key's name; null (the default): the one key statement in `keyFile`. */
  readonly keyName: string | null;
  /** File holding the TSIG secret: a BIND key statement (tsig-keygen's output) or the bare base64 secret; not readable by other users. */
  readonly keyFile: string;
  /** null (the default): the key file's algorithm, or hmac-sha256 for a bare secret. */
  readonly algorithm: TsigAlgorithm | null;
  /** How long the server may take to serve an added record. Default 2 minutes. */
  readonly propagationTimeoutMs: number;
}

/** dns-01 through the user's scripts, with certbot's --manual-auth-hook contract. */
export interface DnsHookConfig {
  readonly kind: "hook";
  /** Adds the TXT record and returns once it is visible; absolute path. */
  readonly authHook: string;
  /** Removes it after validation; null: none. */
  readonly cleanupHook: string | null;
  /** How long each hook run may take before it is stopped. Default 5 minutes. */
  readonly timeoutMs: number;
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
  /**
   * Lower-case DNS names, or IP addresses (IPv6 in canonical form, without brackets), without a
   * trailing dot, this site answers for; at least one, the first its primary name. With tls: acme,
   * an IP address is ordered as an `ip` identifier (RFC 8738).
   */
  readonly hosts: readonly string[];
  /** The notebook, usually the tunnel's local end: origin only (scheme, host, port). */
  readonly upstream: URL;
  readonly tls: TlsSource;
  /**
   * The ACME profile this site's orders ask for: `sites[].acme_profile`, else `acme.profile`, else
   * null (see AcmeConfig.profile). Always null unless tls is acme.
   */
  readonly acmeProfile: string | null;
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
  /** Requests in flight on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS; nginx's default is 128). */
  http2StreamsPerConnection: 128,
} as const;

/** acme.dns.propagation_timeout and hook_timeout defaults: certbot's DNS plugins wait 60-120 s, and hooks often sleep as long. */
export const DEFAULT_DNS_PROPAGATION_TIMEOUT_MS = 120_000;
export const DEFAULT_DNS_HOOK_TIMEOUT_MS = 300_000;

export const DEFAULT_TIMEOUTS: TimeoutsConfig = { headersMs: 20_000, clientIdleMs: 300_000, upstreamIdleMs: 120_000, drainMs: 10_000 };
