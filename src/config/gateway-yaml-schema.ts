/**
 * What gateway.yaml may hold, as data: keys, types, allowed values, patterns, defaults and help
 * text. The loader takes its known keys, choices, patterns and defaults from here, and
 * `gateway schema` prints it as a JSON Schema (draft-07) for editors, so the two cannot drift.
 * Checks a schema cannot express (files exist, a name in one site only) stay in load-config.ts.
 * Every number has a range: integers state it as minimum/maximum; durations, which are strings,
 * as a pattern that admits exactly the range and in their description, and to the loader as
 * minimumDuration/maximumDuration (left out of the printed schema).
 */
import { durationPattern, formatDuration, parseDuration } from "./duration.js";
import { DEFAULT_DNS_HOOK_TIMEOUT_MS, DEFAULT_DNS_PROPAGATION_TIMEOUT_MS, DEFAULT_LOGIN_GUARD, DEFAULT_TIMEOUTS, type TsigAlgorithm } from "./gateway-config.js";
import { integerRangePattern } from "./range-pattern.js";

/** A JSON Schema (draft-07) node: the subset gateway.yaml needs. */
export interface SchemaNode {
  readonly description?: string;
  readonly type?: "string" | "integer" | "boolean" | "object" | "array";
  readonly enum?: readonly string[];
  readonly const?: string | boolean;
  readonly pattern?: string;
  readonly minLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  /**
   * A duration string's bounds ("1s", "1d"), which the loader reads; `pattern` states the same
   * range to editors. Not JSON Schema keywords: `gatewayJsonSchema` leaves them out.
   */
  readonly minimumDuration?: string;
  readonly maximumDuration?: string;
  readonly default?: unknown;
  readonly examples?: readonly unknown[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
  readonly items?: SchemaNode;
  readonly minItems?: number;
  readonly uniqueItems?: boolean;
  readonly contains?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
  readonly oneOf?: readonly SchemaNode[];
  readonly not?: SchemaNode;
  readonly if?: SchemaNode;
  readonly then?: SchemaNode;
  readonly allOf?: readonly SchemaNode[];
}

/** Named ACME directories; any other https URL of an ACME directory is accepted too. */
export const ACME_DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
};

const OCTET = integerRangePattern(0, 255);
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
const LOOPBACK_IPV4 = `127(?:\\.${OCTET}){3}`;
const LOOPBACK_HOST = `(?:localhost|::1|${LOOPBACK_IPV4})`;
const LOOPBACK_URL_HOST = `(?:localhost|\\[::1\\]|${LOOPBACK_IPV4})`;
/** A port a service listens on; listen ports and admin may also be 0 (any free port). */
const PORT = integerRangePattern(1, 65535);
const PORT_OR_ZERO = integerRangePattern(0, 65535);
const DNS_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
/** JSON Schema patterns take no flags: spell a word in either case. */
const anyCase = (word: string): string => [...word].map((c) => `[${c.toLowerCase()}${c.toUpperCase()}]`).join("");

/** Patterns shared by the loader's checks and the JSON Schema. */
export const PATTERNS = {
  /** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
  loopbackHost: new RegExp(`^${LOOPBACK_HOST}$`),
  email: /^[^@\s]+@[^@\s]+\.[^@\s]+$/,
  /** A DNS server as Node's Resolver takes it: IPv4 or IPv6, with :port (IPv6 then in brackets). */
  dnsServer: new RegExp(`^(?:${IPV4}(?::${PORT})?|[0-9a-fA-F:]*:[0-9a-fA-F:.]*|\\[[0-9a-fA-F:]*:[0-9a-fA-F:.]*\\]:${PORT})$`),
  /** A login form's path, matched against a request's path (the part before any "?"). */
  loginPath: /^\/[^\s?#]*$/,
  /** Jupyter's base_url: a path that starts and ends with "/". */
  baseUrl: /^\/(?:[^\s?#]*\/)?$/,
  /** The workstation as ssh takes it, [user@]host: not an option (-…), no whitespace or control characters, not a URL. */
  sshDestination: /^(?!.*:\/\/)[^-\s\x00-\x1f][^\s\x00-\x1f]*$/,
  /** host:port as the workstation sees the notebook. */
  remote: new RegExp(`^(?:[A-Za-z0-9.-]+|\\[[0-9a-fA-F:]+\\]):${PORT}$`),
  /** The admin endpoint: a loopback host (group 1) and a port (group 2; 0 picks a free one). */
  admin: new RegExp(`^(${LOOPBACK_URL_HOST}):(${PORT_OR_ZERO})$`),
  /** The notebook's URL: scheme, host and a port from 1 to 65535 (leading zeros, as URLs allow). */
  upstream: new RegExp(`^https?://(?:\\[[0-9A-Fa-f:.]+\\]|[^/?#\\s@:\\[\\]]+)(?::0*${PORT})?/?$`),
  /** An allow/deny entry as far as a pattern can tell (bits past the prefix need the loader). */
  addressRange: new RegExp(`^(?:${IPV4}(?:/${integerRangePattern(0, 32)})?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:/${integerRangePattern(0, 128)})?)$`),
  dnsName: new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?$`),
  /** acme.dns.server: IPv4, a DNS name, or [IPv6], each with an optional :port; or a bare IPv6 address. */
  dnsUpdateServer: new RegExp(`^(?:(?:${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?|\\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\\])(?::${PORT})?|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$`),
  /**
   * Names no CA issues for: localhost, *.localhost, single labels. IP literals are not among them:
   * a CA issues for an address it can reach (RFC 8738), which the loader decides.
   */
  localName: new RegExp(`^(?:${anyCase("localhost")}|.*\\.${anyCase("localhost")}|[^.:]*)$`),
  /** An ACME profile name as a CA's directory lists it in meta.profiles (e.g. classic, tlsserver, shortlived). */
  acmeProfile: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
} as const;

function object<P extends Record<string, SchemaNode>>(description: string, properties: P, extra: Omit<SchemaNode, "properties"> = {}) {
  return { description, type: "object", properties, additionalProperties: false, ...extra } as const satisfies SchemaNode;
}

function choice<const C extends readonly string[]>(description: string, values: C, defaultValue: C[number]) {
  return { description, type: "string", enum: values, default: defaultValue } as const;
}

function port<D extends number>(description: string, defaultValue: D, minimum: 0 | 1) {
  return { description, type: "integer", minimum, maximum: 65535, default: defaultValue } as const;
}

function text(description: string, pattern?: RegExp | string, examples?: readonly string[]): SchemaNode {
  return { description, type: "string", ...(pattern ? { pattern: typeof pattern === "string" ? pattern : pattern.source } : { minLength: 1 }), ...(examples ? { examples } : {}) };
}

function list<I extends SchemaNode>(description: string, items: I, extra: Omit<SchemaNode, "items"> = {}) {
  return { description, type: "array", items, ...extra } as const;
}

const OFF = { const: false, description: "off" } as const;

/** More workers than this only costs memory: each is a Node process of ~60 MiB. */
export const MAX_WORKERS = 64;

const LISTEN = object("Where the gateway listens.", {
  address: { ...text("Address both listeners bind: 0.0.0.0 for every interface, :: for IPv6 too, 127.0.0.1 for this machine only.", undefined, ["0.0.0.0", "127.0.0.1"]), default: "0.0.0.0" },
  https: port("HTTPS port; 443 needs root or CAP_NET_BIND_SERVICE; 0 picks a free port.", 443, 0),
  http: { anyOf: [port("Port for ACME HTTP-01 answers and the redirect to https; 0 picks a free port.", 80, 0), OFF] as const, description: "Port for ACME HTTP-01 answers and the redirect to https, or false to turn it off.", default: 80 },
  http2: { description: "Offer HTTP/2 (ALPN h2) on listen.https, next to HTTP/1.1; false: HTTP/1.1 only.", type: "boolean", default: true },
});

/** The TSIG algorithms the gateway signs with; `TsigAlgorithm` in gateway-config.ts spells the same. */
export const TSIG_ALGORITHMS = ["hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"] as const satisfies readonly TsigAlgorithm[];

const DNS = object("How dns-01 publishes its TXT records: RFC 2136 dynamic updates signed with TSIG (server, key_file), or your own scripts (auth_hook), as certbot's manual hooks.", {
  server: text("The zone's primary DNS server, which takes TSIG-signed updates: IP or name, with :port if not 53.", PATTERNS.dnsUpdateServer, ["192.0.2.53", "ns1.example.com:53", "[2001:db8::53]:53"]),
  zone: text("The zone holding the names, e.g. example.com; default: found with an SOA query.", PATTERNS.dnsName, ["example.com"]),
  key_name: text("The TSIG key's name as the server knows it; default: the one key in key_file.", PATTERNS.dnsName, ["acme-update"]),
  key_file: text("File (relative to this file) holding the TSIG key: tsig-keygen's output (key \"name\" { algorithm …; secret \"…\"; };) or the bare base64 secret; not readable by other users (chmod 600)."),
  algorithm: choice("The TSIG key's HMAC; default: the key file's, else hmac-sha256.", TSIG_ALGORITHMS, "hmac-sha256"),
  propagation_timeout: duration("How long the server may take to serve the added record before the order fails.", DEFAULT_DNS_PROPAGATION_TIMEOUT_MS, "10s", "1h"),
  auth_hook: text("Script that adds the TXT record and returns once it is visible, as certbot's --manual-auth-hook: env CERTBOT_DOMAIN, CERTBOT_VALIDATION, CERTBOT_REMAINING_CHALLENGES, CERTBOT_ALL_DOMAINS; exit 0 when done."),
  cleanup_hook: text("Script that removes the record after validation, as certbot's --manual-cleanup-hook (also gets CERTBOT_AUTH_OUTPUT)."),
  hook_timeout: duration("How long each hook run may take before it is stopped and the order fails.", DEFAULT_DNS_HOOK_TIMEOUT_MS, "10s", "1h"),
});
const DIRECTORY = {
  description: "letsencrypt, letsencrypt-staging, or the https URL of any ACME directory.",
  anyOf: [{ type: "string", enum: Object.keys(ACME_DIRECTORIES) }, text("https URL of an ACME directory", /^https:\/\/\S+$/)],
} as const satisfies SchemaNode;

/** `eab:`, of the primary CA and of each fallback. */
export const EAB = object(
  "External Account Binding (RFC 8555 §7.3.4), for CAs that need it (ZeroSSL, Google Trust Services): the key ID and HMAC key the CA gives you.",
  {
    kid: text("The EAB key ID the CA gave you."),
    hmac_key_file: text("File holding the EAB HMAC key, base64url as the CA gives it, readable by the gateway's user only (chmod 600); relative to this file."),
  },
  { required: ["kid", "hmac_key_file"] },
);

/** One of `acme.fallback:`. */
export const FALLBACK_CA = object(
  "An ACME CA tried when the ones before it fail.",
  {
    directory: DIRECTORY,
    eab: EAB,
    email: text("Account contact at this CA; default acme.email.", PATTERNS.email, ["you@example.com"]),
  },
  { required: ["directory"] },
);

const ACME = object("The ACME certificate authority (Let's Encrypt by default).", {
  email: text("Account contact; optional for Let's Encrypt.", PATTERNS.email, ["you@example.com"]),
  directory: { ...DIRECTORY, default: "letsencrypt" },
  eab: EAB,
  fallback: {
    description: "Other ACME CAs (one, or a list), tried in order when the primary fails after its retries (unreachable, 5xx, rate limited); every order starts at the primary again.",
    anyOf: [FALLBACK_CA, list("Fallback CAs, tried in order.", FALLBACK_CA, { minItems: 1 })],
  },
  challenge: choice("How the CA checks control of a name: http-01 on listen.http, tls-alpn-01 on listen.https, or dns-01 with a TXT record (set acme.dns; ports 80 and 443 need not answer).", ["http-01", "tls-alpn-01", "dns-01"], "http-01"),
  dns: DNS,
  profile: text(
    "ACME profile (draft-ietf-acme-profiles) asked for in every order, e.g. shortlived, tlsserver or classic; it must be one the CA's directory lists (meta.profiles). Default: none, which is the CA's default profile, except that IP-address sites ask for shortlived when the CA offers it.",
    PATTERNS.acmeProfile,
    ["shortlived", "tlsserver", "classic"],
  ),
  resolvers: list(
    "DNS servers (IP, or IP:port with IPv6 in brackets) the gateway asks for a site's address when it fetches its own HTTP-01 challenge before the CA does. Default: the system's (/etc/resolv.conf, not /etc/hosts). Set a public resolver when this server's DNS answers differently from the world's.",
    text("IP address, or IP:port", PATTERNS.dnsServer, ["1.1.1.1", "[2606:4700:4700::1111]:53"]),
    { minItems: 1, uniqueItems: true },
  ),
});

const LOGS = object("Event log format and the access log.", {
  format: choice("Event log lines on stdout: JSON lines or logfmt.", ["json", "logfmt"], "json"),
  access: {
    description: "Access log in nginx's combined format (goaccess, fail2ban): a file path (relative to this file), stdout, or false (off). Reopened on SIGHUP.",
    anyOf: [text("file path or stdout"), OFF],
    default: false,
  },
});

/** A duration from `minimumDuration` to `maximumDuration` ("1s", "1d"), default `defaultMs`. */
function duration(description: string, defaultMs: number, minimumDuration: string, maximumDuration: string) {
  const [minimumMs, maximumMs] = [minimumDuration, maximumDuration].map(parseDuration);
  if (minimumMs === undefined || maximumMs === undefined || defaultMs < minimumMs || defaultMs > maximumMs) throw new Error(`duration range ${minimumDuration}..${maximumDuration} is not a range holding ${defaultMs} ms`);
  return {
    description: `${description} A duration from ${minimumDuration} to ${maximumDuration}: a whole number and s, m, h or d.`,
    type: "string",
    pattern: durationPattern(minimumMs, maximumMs),
    default: formatDuration(defaultMs),
    minimumDuration,
    maximumDuration,
  } as const satisfies SchemaNode;
}

const TIMEOUTS = object("Idle and drain timers; idle timers are reset by every byte, and open WebSockets have none.", {
  headers: duration("A client must send its request headers (and finish the TLS handshake) within this; longer lets slow-header floods hold connections.", DEFAULT_TIMEOUTS.headersMs, "1s", "2m"),
  client_idle: duration("An idle client connection (keep-alive between requests) is closed after this; below 5s connections close just as browsers reuse them. Must be longer than upstream_idle.", DEFAULT_TIMEOUTS.clientIdleMs, "5s", "1h"),
  upstream_idle: duration("The notebook must send a byte within this, or the request (or WebSocket upgrade) gets a 504. Must be shorter than client_idle.", DEFAULT_TIMEOUTS.upstreamIdleMs, "1s", "30m"),
  drain: duration("On SIGTERM, how long in-flight requests may finish before what is left is closed; keep it under the supervisor's stop timeout.", DEFAULT_TIMEOUTS.drainMs, "1s", "10m"),
});

function count(description: string, defaultValue: number, maximum: number) {
  return { description, type: "integer", minimum: 1, maximum, default: defaultValue } as const satisfies SchemaNode;
}

const LOGIN_GUARD = object("Brute-force protection for the notebook's login form: past a limit, attempts get 429 and never reach the notebook.", {
  max_failures_per_address: count("Failed logins one client address may make per window.", DEFAULT_LOGIN_GUARD.maxFailuresPerAddress, 1000),
  max_failures_total: count("Failed logins all addresses together may make per window; each is kept (and written to storage) until it leaves the window.", DEFAULT_LOGIN_GUARD.maxFailuresTotal, 10_000),
  window: duration("The sliding window; a locked-out address waits up to this long.", DEFAULT_LOGIN_GUARD.windowMs, "1m", "1d"),
  paths: list("Paths of login forms whose POSTs are counted; at least one.", text("a path", PATTERNS.loginPath), { minItems: 1, uniqueItems: true, default: DEFAULT_LOGIN_GUARD.paths }),
});

const TUNNEL = object(
  "Keep `ssh -N -L` up to reach the upstream (its local end is the upstream's port on 127.0.0.1).",
  {
    ssh: text("The workstation as for ssh: [user@]host.", PATTERNS.sshDestination, ["me@workstation.example.edu"]),
    port: port("sshd port on the workstation.", 22, 1),
    remote: text("The notebook as the workstation sees it (host:port); default localhost:<upstream port>.", PATTERNS.remote, ["localhost:8888"]),
    identity_file: text("Private key file for ssh -i (relative to this file); default: ssh's own."),
    known_hosts_file: text("known_hosts file holding the workstation's host key (checked strictly); default: ssh's own."),
  },
  { required: ["ssh"] },
);

const ADDRESS_RANGE = text("An IP address or CIDR range, IPv4 or IPv6, e.g. 203.0.113.0/24, with no bit set past the prefix.", PATTERNS.addressRange);
const HOST = text("A public DNS name, or an IP address (IPv4, or IPv6 without brackets), without scheme or port.", `${PATTERNS.dnsName.source}|^[0-9A-Fa-f:.]+$`, ["jupyter.example.com"]);
const LOCAL_HOSTS_NEED_LOCAL_TLS: SchemaNode = {
  if: { anyOf: [{ required: ["host"], properties: { host: { type: "string", pattern: PATTERNS.localName.source } } }, { required: ["hosts"], properties: { hosts: { type: "array", contains: { type: "string", pattern: PATTERNS.localName.source } } } }] },
  then: { required: ["tls"], properties: { tls: { not: { const: "acme" } } } },
};
const TUNNEL_NEEDS_LOOPBACK_UPSTREAM: SchemaNode = {
  if: { required: ["tunnel"] },
  then: { properties: { upstream: { type: "string", pattern: `^https?://${LOOPBACK_URL_HOST}(?::\\d+)?/?$` } } },
};

/** `tls: {cert, key}`. */
export const TLS_FILES = object(
  "Certificate files you manage, e.g. certbot's.",
  { cert: text("The certificate chain, e.g. /etc/letsencrypt/live/NAME/fullchain.pem."), key: text("The private key, e.g. /etc/letsencrypt/live/NAME/privkey.pem.") },
  { required: ["cert", "key"] },
);

const SITE = object(
  "One public site: the names a browser uses and the notebook behind them.",
  {
    host: HOST,
    hosts: list("Several public names for the same notebook (instead of host); each once.", HOST, { minItems: 1, uniqueItems: true }),
    upstream: text("The notebook, usually the tunnel's local end: scheme, host and port (1 to 65535) only.", PATTERNS.upstream, ["http://127.0.0.1:8888"]),
    tls: {
      description: "Where the certificate comes from: acme (obtained and renewed), internal (local CA, for localhost and LAN names), or {cert, key} files you manage (reloaded on change).",
      anyOf: [
        { type: "string", enum: ["acme", "internal"] },
        TLS_FILES,
      ],
      default: "acme",
    },
    tunnel: TUNNEL,
    frame_ancestors: list("Origins allowed to embed the site in a frame, besides itself; empty forbids framing (clickjacking).", text("an origin", /^https?:\/\/[^/?#\s]+\/?$/, ["https://mywebsite.example.com"]), { uniqueItems: true, default: [] }),
    base_url: { ...text("Jupyter's base_url, if it has one: the gateway checks <base_url>api/kernels demands a password before anything passes.", PATTERNS.baseUrl, ["/", "/jupyter/"]), default: "/" },
    allow_unprotected_upstream: { description: "Serve a notebook whose API answers without a password (an open shell on the workstation).", type: "boolean", default: false },
    login_guard: LOGIN_GUARD,
    allow: list("Client addresses allowed to reach the site; empty allows every address not denied.", ADDRESS_RANGE, { uniqueItems: true, default: [] }),
    deny: list("Client addresses refused, even when also allowed.", ADDRESS_RANGE, { uniqueItems: true, default: [] }),
    acme_profile: text("ACME profile for this site's orders, instead of acme.profile; only with tls: acme.", PATTERNS.acmeProfile, ["shortlived"]),
    client_certificates: choice("required: browsers must present a client certificate from `gateway client-cert add` (mutual TLS).", ["required", "off"], "off"),
  },
  {
    required: ["upstream"],
    oneOf: [{ required: ["host"] }, { required: ["hosts"] }],
    allOf: [LOCAL_HOSTS_NEED_LOCAL_TLS, TUNNEL_NEEDS_LOOPBACK_UPSTREAM],
  },
);

/** The whole file. */
export const GATEWAY_YAML = object(
  "notebook-gateway configuration",
  {
    listen: LISTEN,
    storage: { ...text("Folder for the account key, certificates, the local CA and state (kept 0700); relative to this file."), default: "/var/lib/gateway" },
    admin: {
      description: "Loopback admin endpoint (/healthz, /status, /metrics) as host:port, or false to turn it off.",
      anyOf: [text("loopback host:port (port 0 picks a free one)", PATTERNS.admin, ["127.0.0.1:2019"]), OFF],
      default: "127.0.0.1:2019",
    },
    workers: {
      description: "Processes that terminate TLS and proxy: auto (one per core this process may use), or a number; 1 (the default) serves from the one gateway process. From 2, a primary process keeps certificates, tunnels, the login guard's counts and the admin endpoint, and replaces a worker that dies.",
      anyOf: [{ const: "auto", description: "one worker per core" }, count("number of worker processes (1: no workers, the gateway serves in one process)", 1, MAX_WORKERS)] as const,
      default: 1,
    },
    acme: ACME,
    logs: LOGS,
    timeouts: TIMEOUTS,
    sites: list("The public sites; each name belongs to one site.", SITE, { minItems: 1 }),
  },
  { required: ["sites"] },
);

/** The known keys of a mapping in the schema, for the loader's unknown-key check. */
export function keysOf(node: { readonly properties: Readonly<Record<string, SchemaNode>> }): string[] {
  return Object.keys(node.properties);
}

/** SchemaNode keys only the loader reads; strict validators (ajv's default) refuse unknown keywords. */
const LOADER_ONLY_KEYS: ReadonlySet<string> = new Set(["minimumDuration", "maximumDuration"] satisfies Array<keyof SchemaNode>);

/** gateway.yaml's JSON Schema document, as `gateway schema` prints it. */
export function gatewayJsonSchema(): Record<string, unknown> {
  const document = { $schema: "http://json-schema.org/draft-07/schema#", title: "gateway.yaml", ...GATEWAY_YAML };
  return JSON.parse(JSON.stringify(document, (key, value: unknown) => (LOADER_ONLY_KEYS.has(key) ? undefined : value))) as Record<string, unknown>;
}
