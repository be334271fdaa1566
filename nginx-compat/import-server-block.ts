import { isIP } from "node:net";
import { resolve } from "node:path";
import { stringify } from "yaml";
import { DEFAULT_TIMEOUTS } from "../src/config/gateway-config.js";
import { GATEWAY_IN_NGINX as GATEWAY } from "./gateway-in-nginx.js";
import type { NginxConfig, NginxDirective } from "./parse-nginx.js";

/** gateway.yaml text made from an nginx config, and every directive not carried over as such. */
export interface ImportResult {
  readonly yaml: string;
  /** "file:line: directive: why", one per directive dropped or changed in meaning. */
  readonly warnings: readonly string[];
}

/** The nginx config cannot become a gateway.yaml; `usage` when another --server-name would fix it. */
export class NginxImportError extends Error {
  override readonly name = "NginxImportError";
  constructor(message: string, readonly usage: boolean) {
    super(message);
  }
}

export interface ImportOptions {
  /** Picks the server block whose server_name includes this name, when there are several. */
  readonly serverName?: string;
  /** The main nginx file as the user named it, for messages. */
  readonly displayName: string;
}

/** Where certbot keeps the certificates it renews: these become `tls: acme`. */
const LETSENCRYPT_LIVE = /^\/etc\/letsencrypt\/live\/([^/]+)\//;

/** The gateway's default timeouts.headers and timeouts.client_idle, as nginx writes times. */
const HEADERS_TIMEOUT = `${DEFAULT_TIMEOUTS.headersMs / 1000}s`;
const CLIENT_IDLE_TIMEOUT = `${DEFAULT_TIMEOUTS.clientIdleMs / 1000}s`;
const CLIENT_IDLE_REASON = `the gateway's timeouts.client_idle (${CLIENT_IDLE_TIMEOUT} unless set) covers idle clients; set it in gateway.yaml to keep this value`;

/** Why known directives are not carried over; the gateway's TLS profile is fixed (src/tls/tls-profile.ts). */
const DROP_REASONS: Readonly<Record<string, string>> = {
  ssl_prefer_server_ciphers: "no setting; the gateway orders its own AEAD-only suites, and TLS 1.3 ignores it",
  ssl_dhparam: "no DHE suites in the gateway (ECDHE X25519/P-256/P-384 only), so no DH parameters",
  ssl_ecdh_curve: "the gateway uses X25519, P-256 and P-384",
  ssl_session_cache: "Node's TLS session resumption is used; no setting",
  ssl_session_timeout: "Node's TLS session resumption is used; no setting",
  ssl_session_tickets: "Node's TLS session resumption is used; no setting",
  ssl_stapling: "Let's Encrypt ended OCSP in 2025: there is nothing to staple",
  ssl_stapling_verify: "Let's Encrypt ended OCSP in 2025: there is nothing to staple",
  ssl_trusted_certificate: "only used for OCSP stapling, which Let's Encrypt ended in 2025",
  ssl_buffer_size: "no setting; Node sizes TLS records itself",
  auth_basic: "no basic auth in the gateway: the notebook's password protects it (client_certificates: required adds a second factor)",
  auth_basic_user_file: "no basic auth in the gateway: the notebook's password protects it (client_certificates: required adds a second factor)",
  error_log: "the gateway logs events as JSON lines on stdout",
  client_header_timeout: `the gateway's timeouts.headers (${HEADERS_TIMEOUT} unless set) does this; set it in gateway.yaml to keep this value`,
  client_body_timeout: CLIENT_IDLE_REASON,
  send_timeout: CLIENT_IDLE_REASON,
  keepalive_timeout: CLIENT_IDLE_REASON,
};

/**
 * Directives whose arguments (joined by spaces) say what the gateway does anyway: carried over
 * without a warning. Among them all that export-nginx writes for the gateway's fixed behaviour.
 */
const GATEWAY_VALUES: Readonly<Record<string, string>> = {
  ssl_protocols: GATEWAY.sslProtocols,
  ssl_ciphers: GATEWAY.sslCiphers,
  ssl_prefer_server_ciphers: "on",
  ssl_ecdh_curve: GATEWAY.sslEcdhCurve,
  client_max_body_size: "0",
  client_header_timeout: HEADERS_TIMEOUT,
  client_body_timeout: CLIENT_IDLE_TIMEOUT,
  send_timeout: CLIENT_IDLE_TIMEOUT,
  keepalive_timeout: CLIENT_IDLE_TIMEOUT,
  proxy_http_version: "1.1",
  proxy_buffering: "off",
  proxy_request_buffering: "off",
  proxy_redirect: "default",
  proxy_connect_timeout: GATEWAY.proxyConnectTimeout,
  proxy_read_timeout: GATEWAY.proxyIdleTimeout,
  proxy_send_timeout: GATEWAY.proxyIdleTimeout,
  proxy_cookie_flags: GATEWAY.proxyCookieFlags,
};

/**
 * Inputs of the maps behind what the gateway does itself: the WebSocket Connection-header map,
 * the Origin check, and presenting a same-site Origin or Referer as the notebook's.
 */
const GATEWAY_MAP_INPUTS: ReadonlySet<string> = new Set(["$http_upgrade", GATEWAY.originPair, GATEWAY.refererPair, GATEWAY.crossSiteKey]);

/**
 * Response headers the gateway sends itself (src/guard/security-headers.ts): `value` is carried
 * over silently (the CSP is read by frameAncestorsIn), any other value is warned about, saying
 * what the gateway `sends`.
 */
const SECURITY_HEADERS: Readonly<Record<string, { readonly value?: string; readonly sends: string }>> = {
  "strict-transport-security": { value: GATEWAY.securityHeaders["Strict-Transport-Security"], sends: "max-age=31536000 (one year)" },
  "x-content-type-options": { value: GATEWAY.securityHeaders["X-Content-Type-Options"], sends: "nosniff" },
  "x-frame-options": { value: GATEWAY.frameOptions, sends: "SAMEORIGIN, or CSP frame-ancestors from the site's frame_ancestors" },
  "referrer-policy": { value: GATEWAY.securityHeaders["Referrer-Policy"], sends: "same-origin" },
  "content-security-policy": { sends: "frame-ancestors 'self' (plus frame_ancestors), merged with the notebook's own policy" },
};

/**
 * Request headers the gateway sets itself (src/proxy/notebook-headers.ts): carried over silently
 * when nginx's value means what the gateway does, otherwise warned about with why.
 */
const FORWARDING_HEADERS: Readonly<Record<string, { readonly same: RegExp; readonly why: string }>> = {
  upgrade: { same: /^\$http_upgrade$/, why: "the gateway forwards the client's Upgrade on WebSocket handshakes only" },
  connection: { same: /upgrade/i, why: "the gateway sends Connection: upgrade on WebSocket handshakes only" },
  "x-forwarded-for": { same: /^\$remote_addr$/, why: "the gateway sets it to the client's address only: what clients send is never passed through" },
  "x-forwarded-proto": { same: /^(\$scheme|https)$/, why: "the gateway sets it to https" },
  "x-forwarded-host": { same: /^\$(http_)?host$/, why: "the gateway sets it to the Host the client sent" },
  "x-real-ip": { same: /^$/, why: "the gateway sends X-Forwarded-For (the client's address) instead" },
  "x-forwarded-port": { same: /^$/, why: "the gateway never sends it; X-Forwarded-Host carries the port the client used" },
  forwarded: { same: /^$/, why: "the gateway never sends it; X-Forwarded-For, -Proto and -Host carry the same" },
};

/** Redirect statuses a port-80 server may answer with to send browsers to https. */
const REDIRECT_STATUSES = ["301", "302", "307", "308"];

/** `rewrite` regexes that match every request URI: `^`, `^/`, `^(.*)$`, `^/(.*)$`, `^/?(.*)`, `.*`, `(.*)`. */
const WHOLE_URI = /^\^?\/?\??(\(\.\*\)|\.\*)?\$?$/;

interface Site {
  names: string[];
  /** The notebook: the origin its proxying locations pass requests to (an upstream group resolved). */
  upstream: string;
  tls?: { kind: "acme"; certbotName: string } | { kind: "files"; cert: string; key: string };
  /** The `listen ... ssl` directives; the first decides port and address (see chooseListen). */
  listens: Array<{ readonly d: NginxDirective; readonly host: string; readonly port: number }>;
  accessLog?: string;
  /** Origins besides the site that may frame it, from a CSP frame-ancestors header. */
  frameAncestors: string[];
  /** The server's allow and deny rules, as the gateway applies them (see readAccessRules). */
  allow: string[];
  deny: string[];
  notes: string[];
}

/**
 * Turns the directives of an nginx config into gateway.yaml: one `server` that proxies to the
 * notebook (chosen by `serverName` when there are several) and the port-80 redirect servers for
 * its names. Every directive is either carried over or named in a warning (once, however often
 * an include repeats it).
 */
export function importServerBlock(config: NginxConfig, options: ImportOptions): ImportResult {
  const warnings: string[] = [];
  const warn = (d: NginxDirective, why: string): void => {
    const text = [d.name, ...d.args.map(quoteIfNeeded)].join(" ");
    const warning = `${d.where}: ${text.length > 70 ? `${text.slice(0, 67)}...` : text}: ${why}`;
    if (!warnings.includes(warning)) warnings.push(warning);
  };
  const servers: NginxDirective[] = [];
  const maps: NginxDirective[] = [];
  const upstreams = new Map<string, NginxDirective>();
  const collect = (list: readonly NginxDirective[], level: "main" | "http"): void => {
    for (const d of list) {
      if (d.name === "server" && d.block) servers.push(d);
      else if (d.name === "map") maps.push(d);
      else if (d.name === "http" && d.block && level === "main") collect(d.block, "http");
      else if (d.name === "upstream" && d.block && d.args[0]) upstreams.set(d.args[0], d);
      else warn(d, `${level === "main" ? "nginx process setting" : "http-wide setting"} with no gateway equivalent; dropped`);
    }
  };
  collect(config.directives, "main");

  const proxying = servers.filter((s) => proxiedLocations(s).length > 0);
  if (proxying.length === 0) {
    const found = servers.length === 0 ? "there is no server block" : `servers: ${listServers(servers)}`;
    throw new NginxImportError(`${options.displayName}: no server block proxies to a notebook (no location has a proxy_pass; ${found}); import the file holding the notebook's server block, the one with location / { proxy_pass http://127.0.0.1:8888; } (e.g. /etc/nginx/sites-enabled/jupyter), or nginx.conf`, false);
  }
  const server = pickServer(proxying, options);
  const locations = proxiedLocations(server);
  const site: Site = { names: [], upstream: readUpstream(locations, upstreams, warn), listens: [], frameAncestors: [], allow: [], deny: [], notes: [] };
  // Variables set by the gateway's own maps, and the input each is mapped from.
  const gatewayVariables = new Map(maps.filter((m) => GATEWAY_MAP_INPUTS.has(m.args[0] ?? "")).map((m) => [m.args[1] ?? "", m.args[0] ?? ""]));
  readServer(server, { locations, gatewayVariables }, site, config.confPrefix, warn);
  const listen = chooseListen(site, warn);

  let redirect: NginxDirective | undefined;
  for (const other of servers) {
    if (other === server || isRefusingServer(other)) continue; // the gateway answers unknown names 421 itself
    const names = namesOf(other);
    const isRedirect = isRedirectServer(other) && (names.length === 0 || names.some((n) => n === "_" || site.names.includes(n)));
    if (isRedirect && !redirect) redirect = other;
    else warn(other, isRedirect ? "a second redirect server; the gateway's :80 listener already redirects every name" : `another server (${names.join(" ") || "no server_name"}); not imported. Run import-nginx again with --server-name to import it as its own gateway.yaml`);
  }
  for (const map of maps) if (!GATEWAY_MAP_INPUTS.has(map.args[0] ?? "")) warn(map, "no equivalent in the gateway; dropped");
  return { yaml: renderYaml(site, listen, server, redirect), warnings };
}

function pickServer(proxying: readonly NginxDirective[], options: ImportOptions): NginxDirective {
  const listing = listServers(proxying);
  if (options.serverName === undefined) {
    if (proxying.length === 1) return proxying[0] as NginxDirective;
    throw new NginxImportError(`${options.displayName}: ${proxying.length} server blocks proxy to a notebook (${listing}); pick one with --server-name NAME`, true);
  }
  const name = options.serverName.toLowerCase();
  const chosen = proxying.find((s) => namesOf(s).includes(name));
  if (!chosen) throw new NginxImportError(`${options.displayName}: no server block proxying to a notebook has server_name ${options.serverName} (found: ${listing}); pick one of those with --server-name`, true);
  return chosen;
}

/** "a.example.org at file:1:1; (no server_name) at file:9:1", for messages. */
function listServers(servers: readonly NginxDirective[]): string {
  return servers.map((s) => `${namesOf(s).join(" ") || "(no server_name)"} at ${s.where}`).join("; ");
}

/**
 * The locations whose proxying makes the site: `location /` when it proxies; otherwise every
 * location that proxies (a notebook under /jupyter/, or its paths spelled out one by one).
 */
function proxiedLocations(server: NginxDirective): NginxDirective[] {
  const proxying = (server.block ?? []).filter((d) => d.name === "location" && findProxyPass(d) !== undefined);
  const root = proxying.find(isRootLocation);
  return root ? [root] : proxying;
}

function isRootLocation(location: NginxDirective): boolean {
  return location.args.length === 1 && location.args[0] === "/";
}

function findProxyPass(location: NginxDirective): NginxDirective | undefined {
  return location.block?.find((d) => d.name === "proxy_pass");
}

/**
 * The notebook the proxying locations pass requests to. Several locations must agree on it: the
 * gateway sends every path of a site to one upstream.
 */
function readUpstream(locations: readonly NginxDirective[], upstreams: ReadonlyMap<string, NginxDirective>, warn: (d: NginxDirective, why: string) => void): string {
  let upstream: { readonly url: string; readonly where: string } | undefined;
  for (const location of locations) {
    const d = findProxyPass(location) as NginxDirective; // proxiedLocations keeps only locations with one
    const url = readProxyPass(d, upstreams, warn);
    if (upstream && url !== upstream.url) throw new NginxImportError(`${d.where}: proxy_pass to ${url}, but ${upstream.where} proxies to ${upstream.url}, and the gateway sends every path of a site to one notebook; add location / { proxy_pass <the notebook>; } to the server to name it (the other locations are then dropped, with warnings), and import again`, false);
    upstream ??= { url, where: d.where };
  }
  if (!upstream) throw new Error("readUpstream: a server was picked that has no proxying location");
  return upstream.url;
}

/** What reading the notebook's server needs from the rest of the config. */
interface ServerContext {
  /** The locations that make the site (proxiedLocations). */
  readonly locations: readonly NginxDirective[];
  /** Variables set by the gateway's own maps (GATEWAY_MAP_INPUTS), each with the input it is mapped from. */
  readonly gatewayVariables: ReadonlyMap<string, string>;
}

function readServer(server: NginxDirective, context: ServerContext, site: Site, confPrefix: string, warn: (d: NginxDirective, why: string) => void): void {
  // nginx before 1.15 spelled `listen 443 ssl` as `listen 443;` plus `ssl on;`, anywhere in the server.
  const isSslOn = (server.block ?? []).some((d) => d.name === "ssl" && d.args[0] === "on");
  let certFile: string | undefined;
  let keyFile: string | undefined;
  const pathOf = (d: NginxDirective, current: string | undefined): string => {
    if (current !== undefined) warn(d, "a second certificate (nginx serves RSA and ECDSA side by side): the gateway serves one per site, the first one; dropped");
    return current ?? resolve(confPrefix, d.args[0] ?? "");
  };
  const accessRules: NginxDirective[] = [];
  // Directives read alike in the server and its locations; false for the others.
  const readCommon = (d: NginxDirective): boolean => {
    if (GATEWAY_VALUES[d.name] === d.args.join(" ")) return true;
    if (d.name === "client_max_body_size") warn(d, "the gateway has no body size cap: uploads of any size stream through (nginx's 0)");
    else if (d.name === "add_header") readAddHeader(d, site, warn);
    else return false;
    return true;
  };
  const refusesOtherNames = (server.block ?? []).some(isOtherNamesGuard);
  for (const d of server.block ?? []) {
    if (readCommon(d)) continue;
    switch (d.name) {
      case "listen":
        readListen(d, site, isSslOn, refusesOtherNames, warn);
        break;
      case "server_name":
        for (const arg of d.args) {
          const name = hostOfServerName(arg);
          if ((/^[a-z0-9.-]+$/i.test(name) && !name.startsWith(".")) || isIP(name) !== 0) site.names.push(name);
          else warn(d, `${quoteIfNeeded(name)}: the gateway serves exact names only (no catch-all, wildcard or regex); list each name in hosts`);
        }
        break;
      case "ssl_certificate":
        certFile = pathOf(d, certFile);
        break;
      case "ssl_certificate_key":
        keyFile = pathOf(d, keyFile);
        break;
      case "ssl_protocols": {
        const obsolete = d.args.filter((p) => !GATEWAY.sslProtocols.split(" ").includes(p));
        warn(d, obsolete.length > 0 ? `${obsolete.join(" and ")} obsolete (RFC 8996); the gateway speaks TLS 1.2 and 1.3 only` : "the gateway speaks TLS 1.2 and 1.3; no setting");
        break;
      }
      case "ssl_ciphers":
        warn(d, isWeakCipherList(d.args[0] ?? "") ? "weak suites (CBC, DHE, 3DES, non-forward-secret) dropped: the gateway offers forward-secret AEAD suites only" : "no setting; the gateway offers forward-secret AEAD suites only");
        break;
      case "ssl":
        warn(d, isSslOn ? "obsolete (nginx 1.15 deprecated it; write listen 443 ssl): this server's listen directives are taken as TLS, as nginx did" : "obsolete since nginx 1.15; the gateway always serves HTTPS");
        break;
      case "access_log":
        if (d.args[0] === "off") break;
        site.accessLog = d.args[0] === "/dev/stdout" ? "stdout" : d.args[0];
        if (d.args.length > 1 && d.args.slice(1).join(" ") !== "combined") warn(d, "the gateway writes the combined format only; format and options dropped");
        break;
      case "allow":
      case "deny":
        accessRules.push(d);
        break;
      case "if":
        // export-nginx's Origin check, and its refusal of other names on an IP-address site's
        // default server: the gateway does both itself.
        if (d.args.join(" ") !== `(${GATEWAY.refuseCrossSite})` && !isOtherNamesGuard(d)) warn(d, "no equivalent in the gateway; dropped");
        break;
      case "location":
        if (context.locations.includes(d)) readLocation(d, site, context.gatewayVariables, readCommon, warn);
        else warn(d, "the gateway proxies every path to the notebook unchanged; this location is dropped");
        break;
      default:
        warn(d, DROP_REASONS[d.name] ?? "no equivalent in the gateway; dropped");
    }
  }
  readAccessRules(accessRules, site, warn);
  if (site.names.length === 0) throw new NginxImportError(`${server.where}: the server has no exact server_name; add the public name (e.g. server_name jupyter.example.com;) and import again`, false);
  if (certFile === undefined || keyFile === undefined) {
    site.notes.push(`${server.where}: no ssl_certificate; the gateway obtains one from Let's Encrypt (tls: acme)`);
    return;
  }
  const certbot = LETSENCRYPT_LIVE.exec(certFile)?.[1];
  if (certbot !== undefined && LETSENCRYPT_LIVE.exec(keyFile)?.[1] === certbot) site.tls = { kind: "acme", certbotName: certbot };
  else site.tls = { kind: "files", cert: certFile, key: keyFile };
}

/** `listen`'s address as host (0.0.0.0 for all IPv4, :: for all IPv6) and port; nginx's defaults when left out. */
function parseListen(d: NginxDirective, defaultPort: number): { host: string; port: number } {
  const address = d.args[0] ?? "";
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(address);
  if (match) return { host: match[1] ?? (match[2] === "*" ? "0.0.0.0" : (match[2] as string)), port: Number(match[3]) };
  if (/^\d+$/.test(address)) return { host: "0.0.0.0", port: Number(address) };
  return { host: address === "*" ? "0.0.0.0" : address, port: defaultPort };
}

/**
 * A `listen` of the notebook's server: TLS when it says `ssl`, or when the server has `ssl on`.
 * `refusesOtherNames`: the server answers other names with 421 (export-nginx's IP-address site),
 * so its default_server is what the gateway does, not a catch-all.
 */
function readListen(d: NginxDirective, site: Site, isSslOn: boolean, refusesOtherNames: boolean, warn: (d: NginxDirective, why: string) => void): void {
  const params = d.args.slice(1);
  if (!params.includes("ssl") && !isSslOn) {
    warn(d, "a plain-HTTP listener serving the notebook; the gateway serves it over HTTPS only and redirects plain HTTP (listen.http) to it");
    return;
  }
  site.listens.push({ d, ...parseListen(d, 443) });
  for (const p of params) {
    // http2: the gateway offers HTTP/2 next to HTTP/1.1 by default (listen.http2).
    if (p === "ssl" || p === "http2") continue;
    if (p === "default_server") {
      if (!refusesOtherNames) warn(d, "default_server: the gateway answers only its hosts, and 421 for any other name");
    } else if (p === "ipv6only=on") warn(d, "ipv6only=on: the gateway's one listener on :: takes IPv4 and IPv6 (dual stack)");
    else warn(d, `${p}: no equivalent in the gateway; dropped`);
  }
}

/**
 * The gateway listens on one address and port: the first `listen ... ssl` decides, and `[::]`
 * with `0.0.0.0` (or `*`) on the same port is its one dual-stack listener. Others are warned about.
 */
function chooseListen(site: Site, warn: (d: NginxDirective, why: string) => void): { address: string; httpsPort: number } {
  const [first] = site.listens;
  if (!first) return { address: "0.0.0.0", httpsPort: 443 };
  const wildcard = (host: string): boolean => host === "0.0.0.0" || host === "::";
  const dualStack = site.listens.some((l) => l.host === "::" && l.port === first.port) && wildcard(first.host);
  const chosen = { address: dualStack ? "::" : first.host, httpsPort: first.port };
  for (const l of site.listens) {
    const covered = l.port === chosen.httpsPort && (l.host === chosen.address || (dualStack && wildcard(l.host)));
    if (!covered) warn(l.d, `the gateway listens on one address and port (${chosen.address} port ${chosen.httpsPort}, from ${first.d.where}); this listener is dropped`);
  }
  return chosen;
}

function readLocation(location: NginxDirective, site: Site, gatewayVariables: ReadonlyMap<string, string>, readCommon: (d: NginxDirective) => boolean, warn: (d: NginxDirective, why: string) => void): void {
  if (!isRootLocation(location)) {
    const [modifier, path] = location.args.length === 1 ? [undefined, location.args[0]] : location.args;
    warn(location, `the gateway proxies every path to the notebook, not only ${modifier === "~" || modifier === "~*" ? "those this regex matches" : path}`);
  }
  for (const d of location.block ?? []) {
    if (readCommon(d)) continue;
    const value = d.args[0] ?? "";
    switch (d.name) {
      case "proxy_pass": // its upstream was read first (readUpstream)
        warnProxyPassPath(d, warn);
        break;
      case "proxy_http_version":
        warn(d, "the gateway talks HTTP/1.1 to the notebook (WebSockets need it)");
        break;
      case "proxy_set_header": {
        const header = value.toLowerCase();
        const setTo = d.args[1] ?? "";
        // The notebook's own address, and the variables of the maps export-nginx writes for it, are what the gateway presents.
        if (header === "host") {
          if (setTo !== new URL(site.upstream).host) warn(d, "the gateway presents Host as the notebook's own address (and a same-site Origin/Referer after checking the browser's Origin), so the notebook needs no allow_remote_access or other change");
        } else if (header === "origin") {
          if (gatewayVariables.get(setTo) !== GATEWAY.originPair) warn(d, "the gateway checks the browser's Origin against the site, then presents the notebook's own origin");
        } else if (header === "referer") {
          if (gatewayVariables.get(setTo) !== GATEWAY.refererPair) warn(d, "the gateway presents a same-site Referer as the notebook's own address and passes others unchanged");
        } else if (header in FORWARDING_HEADERS) {
          const { same, why } = FORWARDING_HEADERS[header] as { same: RegExp; why: string };
          if (!same.test(setTo)) warn(d, why);
        } else warn(d, "the gateway adds no custom request headers; dropped");
        break;
      }
      case "proxy_read_timeout":
      case "proxy_send_timeout":
      case "proxy_connect_timeout":
        warn(d, "fixed in the gateway: WebSockets are never cut by an idle timer; an HTTP response idle for 120 s answers 504");
        break;
      case "proxy_buffering":
      case "proxy_request_buffering":
        warn(d, "the gateway always streams bodies both ways (like off)");
        break;
      case "proxy_redirect":
        // export-nginx's form: redirects to the notebook's address go to the site, as the gateway does.
        if (value !== `${site.upstream}/` || !/^https:\/\/\$host(:\d+)?\/$/.test(d.args[1] ?? "")) warn(d, "the gateway rewrites redirects to the notebook's address onto the public site; no setting");
        break;
      case "proxy_hide_header":
        // The gateway replaces the notebook's security headers with its own (CSP: merges frame-ancestors into it).
        if (!(value.toLowerCase() in SECURITY_HEADERS)) warn(d, "no equivalent in the gateway; dropped");
        break;
      case "allow":
      case "deny":
        warn(d, "in nginx a location's allow and deny replace the server's there; the gateway applies the server's to every path: not imported");
        break;
      default:
        warn(d, "no equivalent in the gateway; dropped");
    }
  }
}

/** The origin `proxy_pass` sends requests to; an upstream group resolves to its first server. */
function readProxyPass(d: NginxDirective, upstreams: ReadonlyMap<string, NginxDirective>, warn: (d: NginxDirective, why: string) => void): string {
  const url = parseProxyPass(d);
  const group = upstreams.get(url.hostname);
  if (group) {
    const members = (group.block ?? []).filter((m) => m.name === "server");
    for (const other of group.block ?? []) if (other.name !== "server" && other.name !== "keepalive") warn(other, "no equivalent in the gateway; dropped");
    if (members.length !== 1) warn(group, "the gateway proxies to one upstream; the first server is used");
    const first = members[0]?.args[0];
    if (first) return `${url.protocol}//${first}`;
  }
  return url.origin;
}

/** What a path in `proxy_pass` made nginx do, which the gateway does not. */
function warnProxyPassPath(d: NginxDirective, warn: (d: NginxDirective, why: string) => void): void {
  const url = parseProxyPass(d);
  if (url.pathname !== "/") warn(d, `path ${url.pathname} dropped: the gateway passes paths to the notebook unchanged; set the notebook's base_url instead`);
  else if (/^[a-z]+:\/\/[^/]+\/$/.test(d.args[0] ?? "")) warn(d, "the trailing / made nginx pass a decoded, normalised path (%2F became /, .. resolved); the gateway passes the request target unchanged, as nginx does without it");
}

function parseProxyPass(d: NginxDirective): URL {
  let url: URL;
  try {
    url = new URL(d.args[0] ?? "");
  } catch {
    throw new NginxImportError(`${d.where}: proxy_pass ${d.args[0] ?? ""} is not a URL the gateway can proxy to; write http://127.0.0.1:8888`, false);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new NginxImportError(`${d.where}: proxy_pass to ${url.protocol} is not supported; run the notebook on a TCP port (e.g. --port=8888) and proxy to http://127.0.0.1:8888`, false);
  return url;
}

function namesOf(server: NginxDirective): string[] {
  return (server.block ?? []).filter((d) => d.name === "server_name").flatMap((d) => d.args.map(hostOfServerName));
}

/** A server_name as a gateway host: lower-case, an IPv6 address without its brackets. */
function hostOfServerName(arg: string): string {
  const name = arg.toLowerCase();
  const bracketed = /^\[(.+)\]$/.exec(name)?.[1];
  return bracketed !== undefined && isIP(bracketed) === 6 ? bracketed : name;
}

/** export-nginx's `if ($host !~* ^(?:NAMES)$) { return 421; }` on an IP-address site's default server. */
function isOtherNamesGuard(d: NginxDirective): boolean {
  const body = d.block ?? [];
  return d.name === "if" && GATEWAY.otherNamesGuard.test(d.args.join(" ")) && body.length === 1 && body[0]?.name === "return" && body[0].args.join(" ") === "421";
}

/** The `return` and `rewrite` directives of a server: at server level, in its locations and `if` blocks. */
function answersOf(server: NginxDirective): NginxDirective[] {
  const block = server.block ?? [];
  const nested = block.filter((d) => d.name === "location" || d.name === "if").flatMap((d) => d.block ?? []);
  return [...block, ...nested].filter((d) => d.name === "return" || d.name === "rewrite");
}

/**
 * Nothing proxied, and every `return` and `rewrite` sends the browser to https, except certbot's
 * `return 404` for names its `if ($host = NAME)` does not redirect.
 */
function isRedirectServer(server: NginxDirective): boolean {
  const answers = answersOf(server);
  const isNotFound = (d: NginxDirective): boolean => d.name === "return" && d.args[0] === "404";
  return answers.some(isHttpsRedirect) && answers.every((d) => isHttpsRedirect(d) || isNotFound(d)) && proxiedLocations(server).length === 0;
}

/**
 * A catch-all that only refuses (`return 421` or `444`), such as export-nginx's server for
 * unknown names: the gateway answers names it does not serve with 421 itself.
 */
function isRefusingServer(server: NginxDirective): boolean {
  const answers = answersOf(server);
  return answers.length > 0 && answers.every((d) => d.name === "return" && (d.args[0] === "421" || d.args[0] === "444")) && proxiedLocations(server).length === 0;
}

/**
 * `return 301 https://...` (or 302, 307, 308), or a `rewrite` of every URI (`^`, `^(.*)$`,
 * `^/(.*)$`, `.*`) to `https://...`: nginx answers such a rewrite with a redirect whatever its
 * flag (301 for `permanent`, 302 otherwise; checked with nginx 1.22).
 */
function isHttpsRedirect(d: NginxDirective): boolean {
  const [statusOrRegex = "", target = ""] = d.args;
  const answersEveryUri = d.name === "return" ? REDIRECT_STATUSES.includes(statusOrRegex) : WHOLE_URI.test(statusOrRegex);
  return answersEveryUri && target.startsWith("https://");
}

/**
 * A response header: the gateway's own security headers with its values are carried over
 * silently, and a CSP of frame-ancestors alone as the site's frame_ancestors.
 */
function readAddHeader(d: NginxDirective, site: Site, warn: (d: NginxDirective, why: string) => void): void {
  const [name = "", value = ""] = d.args;
  const header = name.toLowerCase();
  const ours = SECURITY_HEADERS[header];
  if (ours?.value === value) return;
  const frameAncestors = header === "content-security-policy" ? frameAncestorsIn(value) : undefined;
  if (frameAncestors) {
    site.frameAncestors = frameAncestors;
    return;
  }
  warn(d, ours ? `the gateway sends its own: ${name}: ${ours.sends}` : "the gateway adds no custom response headers; dropped");
}

/** The other origins of a CSP that is `frame-ancestors 'self' ORIGIN...` and nothing else, as the gateway sends it. */
function frameAncestorsIn(csp: string): string[] | undefined {
  const [directive, self, ...origins] = csp.trim().replace(/;$/, "").split(/\s+/);
  const isOrigin = (text: string): boolean => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol) && new URL(text).origin === text.replace(/\/$/, "");
  return directive?.toLowerCase() === "frame-ancestors" && self === "'self'" && origins.every(isOrigin) ? origins : undefined;
}

/**
 * The server's allow and deny rules as the gateway's lists. nginx takes the first rule that
 * matches; the gateway refuses what `deny` lists, then lets in only what `allow` lists (everyone
 * when it is empty). They agree when the denies come first, then the allows, then `deny all`
 * (as export-nginx writes them); without a final `deny all`, nginx's allows change nothing.
 */
function readAccessRules(rules: readonly NginxDirective[], site: Site, warn: (d: NginxDirective, why: string) => void): void {
  const isAll = (d: NginxDirective): boolean => d.args[0] === "all";
  const leading = (list: readonly NginxDirective[], name: string): readonly NginxDirective[] => {
    const end = list.findIndex((d) => d.name !== name || isAll(d));
    return end === -1 ? list : list.slice(0, end);
  };
  const denies = leading(rules, "deny");
  const allows = leading(rules.slice(denies.length), "allow");
  const [last, ...beyond] = rules.slice(denies.length + allows.length);
  const endsDenyAll = last?.name === "deny" && isAll(last) && allows.length > 0;
  const endsOpen = last === undefined || (last.name === "allow" && isAll(last));
  if (beyond.length > 0 || !(endsDenyAll || endsOpen)) {
    for (const d of rules) warn(d, "nginx takes the first allow or deny that matches, an order the gateway's lists (deny first, then allow) cannot express here: not imported, so every address reaches the site until you write allow: and deny: in gateway.yaml");
    return;
  }
  site.deny = denies.map((d) => d.args[0] ?? "");
  if (endsDenyAll) site.allow = allows.map((d) => d.args[0] ?? "");
  else for (const d of allows) warn(d, "no effect without a later deny all: nginx let in every address not denied, as the gateway does; dropped");
}

/** CBC (SHA1/SHA256/SHA384 MAC) suites, DHE, 3DES, plain RSA key exchange, CAMELLIA, bare "AES". */
function isWeakCipherList(list: string): boolean {
  return list.split(":").filter((s) => !s.startsWith("!") && !s.startsWith("-")).some((s) => !/GCM|CHACHA20|^TLS_/.test(s));
}

function quoteIfNeeded(arg: string): string {
  return arg === "" || /[\s;{}'"#]/.test(arg) ? `'${arg}'` : arg;
}

function renderYaml(site: Site, listen: { address: string; httpsPort: number }, server: NginxDirective, redirect: NginxDirective | undefined): string {
  const scalar = (v: string | number): string => stringify(v).trimEnd();
  const acme = site.tls === undefined || site.tls.kind === "acme";
  const lines = [
    `# gateway.yaml imported by \`gateway import-nginx\` from the server block at ${server.where}.`,
    "# Check it with `gateway check --config gateway.yaml`; what did not carry over was printed as warnings.",
    ...site.notes.map((n) => `# ${n}`),
    "listen:",
    `  address: ${scalar(listen.address)}`,
    `  https: ${listen.httpsPort}`,
  ];
  const redirectListen = redirect?.block?.find((d) => d.name === "listen");
  if (redirect) lines.push(`  http: ${redirectListen ? parseListen(redirectListen, 80).port : 80}  # the redirect server at ${redirect.where}; also answers ACME HTTP-01 challenges`);
  else if (acme) lines.push("  http: 80  # ACME HTTP-01 challenges and a redirect to https (nginx had no :80 server for this site)");
  else lines.push("  http: false  # nginx had no :80 server for this site");
  lines.push("storage: /var/lib/gateway  # account key, certificates and state");
  if (site.accessLog) lines.push("logs:", `  access: ${scalar(site.accessLog)}  # combined format, reopened on SIGHUP (logrotate)`);
  lines.push("sites:");
  lines.push(site.names.length === 1 ? `  - host: ${scalar(site.names[0] as string)}` : `  - hosts: [${site.names.map(scalar).join(", ")}]`);
  lines.push(`    upstream: ${scalar(site.upstream)}  # proxy_pass; WebSockets and any body size pass through`);
  if (site.tls?.kind === "files") {
    lines.push("    tls:  # files you renew yourself; the gateway reloads them when they change", `      cert: ${scalar(site.tls.cert)}`, `      key: ${scalar(site.tls.key)}`);
  } else if (site.tls?.kind === "acme") {
    lines.push(`    tls: acme  # was certbot's /etc/letsencrypt/live/${site.tls.certbotName}/: the gateway now obtains and renews it itself; remove certbot's renewal for it`);
  } else lines.push("    tls: acme");
  const list = (key: string, values: readonly string[], comment: string): string[] => (values.length === 0 ? [] : [`    ${key}:  # ${comment}`, ...values.map((v) => `      - ${scalar(v)}`)]);
  lines.push(
    ...list("frame_ancestors", site.frameAncestors, "from Content-Security-Policy: frame-ancestors 'self' ..."),
    ...list("allow", site.allow, "nginx's allow, then deny all: only these addresses"),
    ...list("deny", site.deny, "nginx's deny, before any allow"),
  );
  return `${lines.join("\n")}\n`;
}
