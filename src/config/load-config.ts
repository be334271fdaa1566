import { Resolver } from "node:dns";
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { isMap, isNode, LineCounter, parseDocument } from "yaml";
import { canonicalIPv6, nonPublicAddressKind, parseAddressRange } from "./address-range.js";
import { keyFileModeProblem } from "../platform/file-system.js";
import { ConfigErrors } from "./config-error.js";
import { ConfigReader, describe, quote, type Field } from "./config-reader.js";
import { DEFAULT_DNS_HOOK_TIMEOUT_MS, DEFAULT_DNS_PROPAGATION_TIMEOUT_MS, DEFAULT_LOGIN_GUARD, DEFAULT_TIMEOUTS, type AcmeConfig, type DnsChallengeConfig, type DnsServer, type AddressRange, type ExternalAccountBinding, type FallbackCa, type GatewayConfig, type ListenConfig, type LogsConfig, type LoginGuardConfig, type PositionedSetting, type SiteConfig, type TimeoutsConfig, type TlsSource, type TunnelConfig } from "./gateway-config.js";
import { ACME_DIRECTORIES, EAB, FALLBACK_CA, GATEWAY_YAML, keysOf, PATTERNS, TLS_FILES } from "./gateway-yaml-schema.js";

const { listen: LISTEN, acme: ACME, logs: LOGS, timeouts: TIMEOUTS, sites: SITES, admin: ADMIN, storage: STORAGE, workers: WORKERS } = GATEWAY_YAML.properties;
const SITE = SITES.items;
const { dns: DNS } = ACME.properties;
const { tls: TLS, tunnel: TUNNEL, login_guard: LOGIN_GUARD, client_certificates: CLIENT_CERTIFICATES } = SITE.properties;

/**
 * Reads and validates gateway.yaml: the only reader of YAML in the gateway. Throws ConfigErrors
 * listing every problem (file:line:col, key, what is wrong, what to write instead).
 * `displayName` is how the file is named in messages (the path the user gave).
 */
export async function loadConfig(path: string, displayName: string = path): Promise<GatewayConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigErrors([`${displayName}: cannot read the configuration (${code}); pass --config FILE, or copy the repository's gateway.yaml there`]);
  }
  return parseConfig(text, file, displayName);
}

/** Validates the text of a gateway.yaml located at `file` (relative paths resolve against its folder). */
export function parseConfig(text: string, file: string, displayName: string): GatewayConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    throw new ConfigErrors(
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return `${displayName}:${line}:${col}: YAML syntax error: ${e.message.split("\n")[0]}; fix the indentation or quoting there`;
      }),
    );
  }
  const read = new ConfigReader(displayName, lines);
  const baseDir = dirname(file);
  const root = doc.contents ?? undefined;
  const top = read.map({ path: "", node: root ?? undefined, anchor: root ?? doc.createNode(null) }, keysOf(GATEWAY_YAML));
  if (!top) throw new ConfigErrors(read.problems);

  const listen = readListen(read, top("listen"));
  const storage = read.string(top("storage"), "give a folder path, e.g. /var/lib/gateway");
  const admin = readAdmin(read, top("admin"));
  const acme = readAcme(read, top("acme"), baseDir);
  const logs = readLogs(read, top("logs"), baseDir);
  const timeouts = readTimeouts(read, top("timeouts"));
  const workers = readWorkers(read, top("workers"));
  const sites = readSites(read, top("sites"), baseDir, acme);

  const clash = admin && listenerOnPort(listen, admin);
  if (admin && clash) {
    const free = [2019, 2020, 2021].find((port) => port !== listen.httpsPort && port !== listen.httpPort);
    const written = top("admin").node;
    read.fail(written ?? top("listen").node ?? root, "admin", `is ${admin.host}:${admin.port}${written ? "" : " (the default)"}, but ${clash} takes port ${admin.port} on ${listen.address} too; give the admin endpoint its own port, e.g. admin: 127.0.0.1:${free}, or write admin: false`);
  }
  if (acme.challenge === "http-01" && listen.httpPort === null && sites.some((s) => s.tls.kind === "acme")) {
    read.fail(top("listen").node ?? root, "listen.http", "is false, but tls: acme with the http-01 challenge needs it to answer the CA; set http: 80, or acme.challenge: tls-alpn-01");
  }
  if (read.problems.length > 0) throw new ConfigErrors(read.problems);
  const where = (setting: PositionedSetting): string | null => {
    const node = doc.getIn(setting.split("."), true);
    return isNode(node) ? read.where(node) : null;
  };
  return {
    file,
    text,
    listen,
    storageDir: resolve(baseDir, storage ?? STORAGE.default),
    admin,
    acme,
    logs,
    timeouts,
    workers,
    sites,
    positions: { "listen.https": where("listen.https"), "listen.http": where("listen.http"), admin: where("admin"), "acme.directory": where("acme.directory"), "acme.profile": where("acme.profile") },
  };
}

function readListen(read: ConfigReader, field: Field): ListenConfig {
  const get = read.map(field, keysOf(LISTEN));
  const address = get ? read.string(get("address"), "use 0.0.0.0 for all interfaces or 127.0.0.1 for this machine only") : undefined;
  if (address !== undefined && isIP(address) === 0) {
    read.fail(get?.("address").node, "listen.address", `must be an IP address (got ${quote(address)}); use 0.0.0.0 for all interfaces, :: for IPv6 too, or 127.0.0.1`);
  }
  const httpsPort = get ? read.integer(get("https"), LISTEN.properties.https, "write the port, e.g. 443 (the default), or 0 for any free port") : undefined;
  let httpPort: number | null | undefined = LISTEN.properties.http.default;
  if (get) {
    const httpField = get("http");
    const raw = read.scalar({ ...httpField, node: httpField.node });
    if (raw === false) httpPort = null;
    else if (raw !== undefined) httpPort = read.integer(httpField, LISTEN.properties.http.anyOf[0], "write the port, e.g. 80 (the default), 0 for any free port, or false to turn it off");
    if (httpPort !== null && httpPort !== undefined && httpPort !== 0 && httpPort === (httpsPort ?? LISTEN.properties.https.default)) {
      read.fail(httpField.node, "listen.http", `is the same port as listen.https (${httpPort}); give each its own port, or write http: false`);
    }
  }
  const http2 = get ? read.boolean(get("http2")) : undefined;
  return { address: address ?? LISTEN.properties.address.default, httpsPort: httpsPort ?? LISTEN.properties.https.default, httpPort: httpPort === undefined ? LISTEN.properties.http.default : httpPort, http2: http2 ?? LISTEN.properties.http2.default };
}

/** `workers:` as a count: auto is the cores this process may run on (taskset and cgroup cpusets count). */
function readWorkers(read: ConfigReader, field: Field): number {
  const [auto, count] = WORKERS.anyOf;
  if (read.scalar(field) === auto.const) return availableParallelism();
  return read.integer(field, count, `write auto (one per core), or a number of worker processes; 1 serves from one process`) ?? WORKERS.default;
}

/** The listener (listen.https or listen.http) that would take the admin endpoint's address and port, if any. */
function listenerOnPort(listen: ListenConfig, admin: { host: string; port: number }): string | undefined {
  // :: takes IPv4 too (dual stack); 0.0.0.0 only IPv4, so not ::1.
  const overlaps = listen.address === admin.host || listen.address === "::" || (listen.address === "0.0.0.0" && isIP(admin.host) !== 6);
  if (!overlaps || admin.port === 0) return undefined;
  if (listen.httpsPort === admin.port) return "listen.https";
  return listen.httpPort === admin.port ? "listen.http" : undefined;
}

function readAdmin(read: ConfigReader, field: Field): GatewayConfig["admin"] {
  const raw = read.scalar(field);
  if (raw === false) return null;
  const admin = parseAdmin(raw === undefined ? ADMIN.default : String(raw));
  if (admin) return admin;
  read.fail(field.node, field.path, `must be a loopback address and a port from 0 to 65535, such as ${ADMIN.default} (got ${describe(field.node)}); the admin endpoint is never exposed beyond this machine. Write false to turn it off`);
  return parseAdmin(ADMIN.default);
}

function parseAdmin(text: string): { host: string; port: number } | null {
  const [, host = "", port] = PATTERNS.admin.exec(text) ?? [];
  return port === undefined ? null : { host: host.replace(/^\[|\]$/g, ""), port: Number(port) };
}

function readLogs(read: ConfigReader, field: Field, baseDir: string): LogsConfig {
  const get = read.map(field, keysOf(LOGS));
  if (!get) return { format: LOGS.properties.format.default, access: null };
  const format = read.choice(get("format"), LOGS.properties.format.enum) ?? LOGS.properties.format.default;
  const accessField = get("access");
  const raw = read.scalar(accessField);
  let access: string | null = null;
  if (typeof raw === "string" && raw.trim() !== "") access = raw === "stdout" ? "stdout" : resolve(baseDir, raw);
  else if (raw !== undefined && raw !== false) read.fail(accessField.node, accessField.path, `must be a file path, stdout, or false (got ${describe(accessField.node)})`);
  return { format, access };
}

function readAcme(read: ConfigReader, field: Field, baseDir: string): AcmeConfig {
  const get = read.map(field, keysOf(ACME));
  const directoryUrl = new URL(ACME_DIRECTORIES[ACME.properties.directory.default] as string);
  const challengeDefault = ACME.properties.challenge.default;
  if (!get) return { email: null, directoryUrl, eab: null, challenge: challengeDefault, dns: null, profile: null, resolvers: [], fallbacks: [] };
  const email = readEmail(read, get("email")) ?? null;
  const primary = readDirectory(read, get("directory")) ?? directoryUrl;
  const challengeField = get("challenge");
  const challenge = read.choice(challengeField, ACME.properties.challenge.enum) ?? challengeDefault;
  const dnsField = get("dns");
  let dns: DnsChallengeConfig | null = null;
  if (challenge === "dns-01") {
    if (dnsField.node === undefined) read.fail(challengeField.node, challengeField.path, "is dns-01, which needs acme.dns: either server and key_file (RFC 2136 dynamic updates), or auth_hook (your own script)");
    else dns = readDns(read, dnsField, baseDir) ?? null;
  } else if (dnsField.node !== undefined) {
    read.fail(dnsField.node, dnsField.path, `is set, but acme.challenge is ${challenge}; write challenge: dns-01 to use it, or remove acme.dns`);
  }
  return {
    email,
    directoryUrl: primary,
    eab: readEab(read, get("eab"), baseDir) ?? null,
    challenge,
    dns,
    profile: readAcmeProfile(read, get("profile")) ?? null,
    resolvers: readResolvers(read, get("resolvers")),
    fallbacks: readFallbacks(read, get("fallback"), baseDir, primary, email),
  };
}

function readEmail(read: ConfigReader, field: Field): string | undefined {
  const value = read.string(field, "use an inbox the CA can reach");
  if (value === undefined || PATTERNS.email.test(value)) return value;
  read.fail(field.node, field.path, `must be an email address (got ${quote(value)}); use an inbox the CA can reach, e.g. you@example.com`);
  return undefined;
}

function readDirectory(read: ConfigReader, field: Field): URL | undefined {
  const directory = read.string(field, "write letsencrypt, letsencrypt-staging, or the https URL of an ACME directory");
  if (directory === undefined) return undefined;
  const url = ACME_DIRECTORIES[directory] ?? parseUrl(directory);
  if (url && new URL(url).protocol === "https:") return new URL(url);
  read.fail(field.node, field.path, `must be letsencrypt, letsencrypt-staging or an https:// URL of an ACME directory (got ${quote(directory)})`);
  return undefined;
}

/** `acme.fallback`: one CA or a list of them, each with its own directory (not the primary's, nor another's). */
function readFallbacks(read: ConfigReader, field: Field, baseDir: string, primary: URL, email: string | null): FallbackCa[] {
  if (field.node === undefined) return [];
  const items = isMap(field.node) ? [field] : read.list(field);
  if (!items) return [];
  if (items.length === 0) read.fail(field.node, field.path, "is empty; leave it out, or list the other CAs' directories, e.g. [{directory: https://acme.zerossl.com/v2/DV90, eab: {kid: …, hmac_key_file: …}}]");
  const fallbacks: FallbackCa[] = [];
  const seen = new Map<string, Field>();
  for (const item of items) {
    const get = read.map(item, keysOf(FALLBACK_CA));
    if (!get) continue;
    const directoryField = read.require(get("directory"), "write the other CA's ACME directory URL, e.g. https://acme.zerossl.com/v2/DV90");
    const directoryUrl = directoryField && readDirectory(read, directoryField);
    const isPrimary = directoryUrl?.href === primary.href;
    if (isPrimary) read.fail(directoryField?.node, `${item.path}.directory`, `is the primary CA's directory (acme.directory, ${primary.href}); a fallback must be another CA`);
    const isNew = directoryField && directoryUrl && !isPrimary && isFirst(read, seen, directoryUrl.href, directoryField, "directory");
    const eab = readEab(read, get("eab"), baseDir);
    const ownEmail = readEmail(read, get("email"));
    if (!directoryField || !directoryUrl || eab === undefined || !isNew) continue;
    fallbacks.push({ directoryUrl, eab, email: ownEmail ?? email, position: read.where(directoryField.node) });
  }
  return fallbacks;
}

/** `eab: {kid, hmac_key_file}`; null when absent, undefined when wrong (recorded). The key file is read now, so a missing or open one is a config error. */
function readEab(read: ConfigReader, field: Field, baseDir: string): ExternalAccountBinding | null | undefined {
  if (field.node === undefined) return null;
  const get = read.map(field, keysOf(EAB));
  if (!get) return undefined;
  const kidField = read.require(get("kid"), "write the EAB key ID the CA gave you");
  const kid = kidField && read.string(kidField, "write the EAB key ID the CA gave you");
  const keyField = get("hmac_key_file");
  const hmacKeyFile = readExistingFile(read, keyField, baseDir, "a file holding the EAB HMAC key the CA gave you");
  const hmacKey = hmacKeyFile && readHmacKey(read, keyField, hmacKeyFile);
  return kid && hmacKeyFile && hmacKey ? { kid, hmacKey, hmacKeyFile } : undefined;
}

/** The HMAC key in `path`: private to its owner, as a key file must be, and base64url alone. Its value never goes into a message. */
function readHmacKey(read: ConfigReader, field: Field, path: string): string | undefined {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, "utf8");
  } catch (err) {
    read.fail(field.node, field.path, `cannot be read (${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}); make it readable by the gateway's user`);
    return undefined;
  }
  const problem = keyFileModeProblem(path, mode);
  if (problem) {
    read.fail(field.node, field.path, problem);
    return undefined;
  }
  const key = text.trim();
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(key)) {
    read.fail(field.node, field.path, `must hold the HMAC key alone, base64url as the CA gives it (${path} holds something else); put only the key in it`);
    return undefined;
  }
  return key;
}

const UPDATE_KEYS = ["server", "zone", "key_name", "key_file", "algorithm", "propagation_timeout"] as const;
const HOOK_KEYS = ["auth_hook", "cleanup_hook", "hook_timeout"] as const;

/** `acme.dns`: the RFC 2136 keys or the hook keys, never both. */
function readDns(read: ConfigReader, field: Field, baseDir: string): DnsChallengeConfig | undefined {
  const get = read.map(field, keysOf(DNS));
  if (!get) return undefined;
  const updateKey = UPDATE_KEYS.find((k) => get(k).node !== undefined);
  const hookKey = HOOK_KEYS.find((k) => get(k).node !== undefined);
  if (updateKey && hookKey) {
    read.fail(get(hookKey).node, get(hookKey).path, `cannot be used together with ${updateKey}: the gateway either updates the zone itself (server, key_file) or runs your hooks (auth_hook); keep one set`);
    return undefined;
  }
  if (hookKey) return readDnsHooks(read, get, baseDir);
  const serverField = read.require(get("server"), "write the zone's primary DNS server, e.g. server: 192.0.2.53, or use auth_hook: /path/to/script");
  const serverText = serverField && read.string(serverField, "write the zone's primary DNS server, e.g. 192.0.2.53 or ns1.example.com:53");
  const server = serverText === undefined ? undefined : parseDnsServer(serverText);
  if (serverText !== undefined && !server) read.fail(serverField?.node, "acme.dns.server", `must be an IP address or a DNS name, with :port if not 53 (IPv6 in brackets then) (got ${quote(serverText)}); e.g. 192.0.2.53, ns1.example.com:53 or [2001:db8::53]:53`);
  const zone = read.string(get("zone"), "write the zone, e.g. example.com");
  const keyName = read.string(get("key_name"), "write the TSIG key's name, e.g. acme-update");
  for (const [key, value] of [["zone", zone], ["key_name", keyName]] as const) {
    if (value !== undefined && !PATTERNS.dnsName.test(value)) read.fail(get(key).node, get(key).path, `must be a DNS name (got ${quote(value)})`);
  }
  const keyFile = readExistingFile(read, get("key_file"), baseDir, "the TSIG key (what tsig-keygen prints, or the bare base64 secret)");
  const keyProblem = keyFile === undefined ? undefined : keyFileModeProblem(keyFile, statSync(keyFile).mode);
  if (keyProblem) read.fail(get("key_file").node, "acme.dns.key_file", keyProblem);
  const algorithm = read.choice(get("algorithm"), DNS.properties.algorithm.enum) ?? null;
  const propagationTimeoutMs = read.duration(get("propagation_timeout"), DNS.properties.propagation_timeout, exampleDefault(DNS.properties.propagation_timeout)) ?? DEFAULT_DNS_PROPAGATION_TIMEOUT_MS;
  if (!server || !keyFile) return undefined;
  return { kind: "rfc2136", server, zone: zone?.toLowerCase().replace(/\.$/, "") ?? null, keyName: keyName ?? null, keyFile, algorithm, propagationTimeoutMs };
}

function readDnsHooks(read: ConfigReader, get: (key: string) => Field, baseDir: string): DnsChallengeConfig | undefined {
  const authHook = readHook(read, read.require(get("auth_hook"), "give the script that adds the TXT record, as certbot's --manual-auth-hook"), baseDir);
  const cleanupHook = get("cleanup_hook").node === undefined ? null : readHook(read, get("cleanup_hook"), baseDir);
  const timeoutMs = read.duration(get("hook_timeout"), DNS.properties.hook_timeout, exampleDefault(DNS.properties.hook_timeout)) ?? DEFAULT_DNS_HOOK_TIMEOUT_MS;
  if (!authHook || cleanupHook === undefined) return undefined;
  return { kind: "hook", authHook, cleanupHook, timeoutMs };
}

/** A hook script: an existing, executable file. */
function readHook(read: ConfigReader, field: Field | undefined, baseDir: string): string | undefined {
  if (!field) return undefined;
  const path = readExistingFile(read, field, baseDir, "a script");
  if (!path) return undefined;
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    read.fail(field.node, field.path, `${path} is not executable; chmod +x ${path} (and give it a #! line)`);
    return undefined;
  }
}

/** "192.0.2.53", "ns1.example.com:5353", "[2001:db8::53]:53" or a bare IPv6 address; undefined when not one of those. */
function parseDnsServer(text: string): DnsServer | undefined {
  if (!PATTERNS.dnsUpdateServer.test(text)) return undefined;
  if (isIP(text) === 6) return { host: text, port: 53 };
  const [, host = "", port] = /^\[?(.*?)\]?(?::(\d+))?$/.exec(text) ?? [];
  if (text.startsWith("[") && isIP(host) !== 6) return undefined;
  return { host: host.toLowerCase().replace(/\.$/, ""), port: port === undefined ? 53 : Number(port) };
}

/** An ACME profile's name; whether the CA offers it is known only from its directory (check, and each order). */
function readAcmeProfile(read: ConfigReader, field: Field): string | undefined {
  const value = read.string(field, "write a profile the CA's directory lists, e.g. shortlived");
  if (value === undefined || PATTERNS.acmeProfile.test(value)) return value;
  read.fail(field.node, field.path, `must be a profile name of letters, digits, dots, hyphens and underscores (got ${quote(value)}); write one the CA lists, e.g. shortlived, tlsserver or classic`);
  return undefined;
}

function readResolvers(read: ConfigReader, field: Field): string[] {
  const items = field.node === undefined ? [] : (read.list(field) ?? []);
  if (field.node !== undefined && items.length === 0) read.fail(field.node, field.path, "is empty; leave it out to use the system's DNS servers, or list some, e.g. [1.1.1.1]");
  const resolvers: string[] = [];
  const seen = new Map<string, Field>();
  for (const item of items) {
    const value = read.string(item, "write a DNS server's IP address, e.g. 1.1.1.1 or [2606:4700:4700::1111]:53");
    if (value === undefined) continue;
    if (!PATTERNS.dnsServer.test(value) || !isDnsServer(value)) {
      read.fail(item.node, item.path, `must be a DNS server's IP address, or IP:port with an IPv6 address in brackets (got ${quote(value)}); e.g. 1.1.1.1 or [2606:4700:4700::1111]:53`);
      continue;
    }
    if (isFirst(read, seen, value, item, "DNS server")) resolvers.push(value);
  }
  return resolvers;
}

/** Whether Node's resolver takes `value` as a server address. */
function isDnsServer(value: string): boolean {
  try {
    new Resolver().setServers([value]);
    return true;
  } catch {
    return false;
  }
}

function readSites(read: ConfigReader, field: Field, baseDir: string, acme: AcmeConfig): SiteConfig[] {
  const required = read.require(field, "add at least one site, e.g. sites: [{host: jupyter.example.com, upstream: \"http://127.0.0.1:8888\"}]");
  if (!required) return [];
  const items = read.list(required);
  if (!items) return [];
  if (items.length === 0) read.fail(required.node, "sites", "is empty; add at least one site with host and upstream");
  const siteOfHost = new Map<string, HostEntry>();
  const sites: SiteConfig[] = [];
  for (const item of items) {
    const site = readSite(read, item, baseDir, siteOfHost, acme);
    if (site) sites.push(site);
  }
  return sites;
}

/** Where a public name was first read: its site's position and its own key path. */
interface HostEntry {
  readonly site: string;
  readonly path: string;
}

/** `siteOfHost` holds each public name read so far. */
function readSite(read: ConfigReader, field: Field, baseDir: string, siteOfHost: Map<string, HostEntry>, acme: AcmeConfig): SiteConfig | undefined {
  const get = read.map(field, keysOf(SITE));
  if (!get) return undefined;
  const position = read.where(field.node);
  const hosts = readHosts(read, get("host"), get("hosts"), field, position, siteOfHost);
  const upstream = readUpstream(read, get("upstream"), field);
  const tls = readTls(read, get("tls"), baseDir, hosts, acme);
  const profileField = get("acme_profile");
  const ownProfile = readAcmeProfile(read, profileField);
  if (ownProfile !== undefined && tls && tls.kind !== "acme") read.fail(profileField.node, profileField.path, `applies to tls: acme only, and this site's tls is ${tls.kind}; remove acme_profile, or write tls: acme`);
  const tunnel = readTunnel(read, get("tunnel"), baseDir, upstream);
  const frameAncestors = readFrameAncestors(read, get("frame_ancestors"));
  const allowUnprotectedUpstream = read.boolean(get("allow_unprotected_upstream")) ?? SITE.properties.allow_unprotected_upstream.default;
  const baseUrlField = get("base_url");
  const baseUrl = read.string(baseUrlField, "write a path such as /jupyter/") ?? SITE.properties.base_url.default;
  if (!PATTERNS.baseUrl.test(baseUrl)) read.fail(baseUrlField.node, baseUrlField.path, `must be a path that starts and ends with / such as /jupyter/ (got ${quote(baseUrl)}), as in Jupyter's --ServerApp.base_url`);
  const loginGuard = readLoginGuard(read, get("login_guard"));
  const allow = readAddressList(read, get("allow"));
  const deny = readAddressList(read, get("deny"));
  const clientCertificatesRequired = (read.choice(get("client_certificates"), CLIENT_CERTIFICATES.enum) ?? CLIENT_CERTIFICATES.default) === "required";
  if (!hosts || !upstream || !tls || tunnel === undefined || !frameAncestors || !loginGuard || !allow || !deny) return undefined;
  const acmeProfile = tls.kind === "acme" ? (ownProfile ?? acme.profile) : null;
  return { hosts, upstream, tls, acmeProfile, tunnel, frameAncestors, allowUnprotectedUpstream, baseUrl, loginGuard, allow, deny, clientCertificatesRequired, position };
}

/** Each name belongs to one site, once: as Host headers are looked up (lower-case, no trailing dot, IPv6 compressed). */
function readHosts(read: ConfigReader, hostField: Field, hostsField: Field, site: Field, position: string, siteOfHost: Map<string, HostEntry>): string[] | undefined {
  if (hostField.node !== undefined && hostsField.node !== undefined) {
    read.fail(hostsField.node, hostsField.path, "cannot be used together with host; keep one (hosts: [a, b] for several names)");
    return undefined;
  }
  const fields = hostsField.node !== undefined ? read.list(hostsField) : [hostField];
  if (!fields) return undefined;
  if (hostField.node === undefined && hostsField.node === undefined) {
    read.fail(site.node, `${site.path}.host`, "is required; write the public name, e.g. host: jupyter.example.com");
    return undefined;
  }
  if (fields.length === 0) {
    read.fail(hostsField.node, hostsField.path, "is empty; list the site's public names, e.g. hosts: [jupyter.example.com], or write host: jupyter.example.com");
    return undefined;
  }
  const hosts: string[] = [];
  for (const f of fields) {
    const value = read.string(f, "write the public name, e.g. jupyter.example.com");
    if (value === undefined) continue;
    const problem = hostProblem(value);
    if (problem) {
      read.fail(f.node, f.path, `${problem} (got ${quote(value)})`);
      continue;
    }
    const name = isIP(value) === 6 ? canonicalIPv6(value) : value.toLowerCase().replace(/\.$/, "");
    const earlier = siteOfHost.get(name);
    if (earlier?.site === position) read.fail(f.node, f.path, `is the same name as ${earlier.path} (${name}); keep one`);
    else if (earlier) read.fail(f.node, f.path, `${quote(name)} is already served by the site at ${earlier.site}; each name belongs to one site`);
    else {
      siteOfHost.set(name, { site: position, path: f.path });
      hosts.push(name);
    }
  }
  return hosts.length === fields.length ? hosts : undefined;
}

/** Why `host` cannot be a site's public name (e.g. "must be a bare name, not a URL; …"), or undefined. `gateway init` asks the same. */
export function hostProblem(host: string): string | undefined {
  if (host.includes("://")) return "must be a bare name, not a URL; write e.g. jupyter.example.com";
  if (host.includes("/")) return "must be a bare name without a path; write e.g. jupyter.example.com";
  if (isIP(host) !== 0) return undefined;
  if (host.includes(":")) return "must not include a port; the port comes from listen.https";
  if (host.startsWith("*.")) return "cannot be a wildcard; list each name the notebook is reached by";
  if (host.length > 253 || !PATTERNS.dnsName.test(host)) {
    return "must be a DNS name of letters, digits, hyphens and dots; write the name that points at this server, e.g. jupyter.example.com";
  }
  return undefined;
}

function readUpstream(read: ConfigReader, field: Field, site: Field): URL | undefined {
  const required = read.require({ ...field, anchor: site.node ?? field.anchor }, "write where the notebook listens, e.g. upstream: http://127.0.0.1:8888");
  if (!required) return undefined;
  const value = read.string(required, "write where the notebook listens, e.g. http://127.0.0.1:8888");
  if (value === undefined) return undefined;
  const problem = upstreamProblem(value);
  if (problem) read.fail(field.node, field.path, problem);
  return problem ? undefined : new URL(value);
}

/** Why `value` cannot be an upstream (it must be http(s)://host[:port]), with what to write; or undefined. `gateway init` asks the same. */
export function upstreamProblem(value: string): string | undefined {
  const url = parseUrl(value);
  const parsed = url ? new URL(url) : undefined;
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || !parsed.hostname) {
    return `must be an http:// URL of the notebook (got ${quote(value)}); write e.g. http://127.0.0.1:8888`;
  }
  if (parsed.port === "0") return `must have a port from 1 to 65535 (got ${quote(value)}); write the port the notebook listens on, e.g. http://127.0.0.1:8888`;
  if (parsed.pathname !== "/" || parsed.search || parsed.hash || parsed.username || parsed.password) {
    return `must be scheme, host and port only (got ${quote(value)}); paths pass through unchanged, so write ${parsed.protocol}//${parsed.host}`;
  }
  return undefined;
}

/** Why `value` cannot be tunnel.ssh (a destination as for ssh, [user@]host), with what to write; or undefined. `gateway init` asks the same. */
export function sshDestinationProblem(value: string): string | undefined {
  if (value.includes("://")) return `must be a destination as for ssh, [user@]host, not a URL (got ${quote(value)}); write e.g. me@workstation.example.edu (a port goes in tunnel.port)`;
  if (!PATTERNS.sshDestination.test(value)) return `must be a destination as for ssh, [user@]host, with no spaces and not starting with - (got ${quote(value)}); write e.g. me@workstation.example.edu`;
  return undefined;
}

/** Let's Encrypt (production or staging, named or by URL): a public CA, which validates from the internet. Any other directory is the user's own. */
function isPublicCa(directoryUrl: URL): boolean {
  return Object.values(ACME_DIRECTORIES).includes(directoryUrl.href);
}

/** `tls:`; `acme` decides what `tls: acme` can prove: a public CA cannot reach loopback, private or reserved addresses, dns-01 no address at all. */
function readTls(read: ConfigReader, field: Field, baseDir: string, hosts: readonly string[] | undefined, acme: AcmeConfig): TlsSource | undefined {
  if (isMap(field.node)) {
    const get = read.map(field, keysOf(TLS_FILES));
    if (!get) return undefined;
    const certFile = readExistingFile(read, get("cert"), baseDir, "the certificate chain (e.g. /etc/letsencrypt/live/NAME/fullchain.pem)");
    const keyFile = readExistingFile(read, get("key"), baseDir, "the private key (e.g. /etc/letsencrypt/live/NAME/privkey.pem)");
    return certFile && keyFile ? { kind: "files", certFile, keyFile } : undefined;
  }
  const value = field.node === undefined ? TLS.default : read.scalar(field);
  if (value === "internal") return { kind: "internal" };
  if (value === "acme") {
    const local = hosts?.find((h) => PATTERNS.localName.test(h));
    if (local) {
      read.fail(field.node ?? field.anchor, field.path, `is acme, but a public CA cannot issue for ${quote(local)}; write tls: internal for local names`);
      return undefined;
    }
    const address = acme.challenge === "dns-01" ? hosts?.find((h) => isIP(h) !== 0) : undefined;
    if (address) {
      read.fail(field.node ?? field.anchor, field.path, `is acme with acme.challenge: dns-01, which cannot prove an IP address such as ${quote(address)} (RFC 8738); use challenge http-01 or tls-alpn-01 for IP-address sites`);
      return undefined;
    }
    // Any CA of the order may get it: the primary, or a fallback when the primary fails.
    const publicCa = [acme, ...acme.fallbacks].find((ca) => isPublicCa(ca.directoryUrl));
    const unreachable = publicCa ? hosts?.map((host) => ({ host, kind: isIP(host) !== 0 ? nonPublicAddressKind(host) : undefined })).find((h) => h.kind !== undefined) : undefined;
    if (!publicCa || !unreachable) return { kind: "acme" };
    const fix = publicCa === acme ? "set acme.directory to the URL of your own ACME CA" : `remove the fallback ${publicCa.directoryUrl.href} (${(publicCa as FallbackCa).position})`;
    read.fail(field.node ?? field.anchor, field.path, `is acme, but a public CA${publicCa === acme ? "" : ` (acme.fallback ${publicCa.directoryUrl.href})`} cannot issue for ${quote(unreachable.host)}, ${unreachable.kind ?? ""} it cannot reach; write tls: internal, or ${fix}`);
    return undefined;
  }
  if (value !== undefined) read.fail(field.node, field.path, `must be acme, internal, or {cert: FILE, key: FILE} (got ${describe(field.node)})`);
  return undefined;
}

function readExistingFile(read: ConfigReader, field: Field, baseDir: string, what: string): string | undefined {
  const required = read.require(field, `give the path of ${what}`);
  if (!required) return undefined;
  const value = read.string(required, `give the path of ${what}`);
  if (value === undefined) return undefined;
  const path = resolve(baseDir, value);
  if (!existsSync(path)) {
    read.fail(field.node, field.path, `file not found (${path}); give the path of ${what}, relative to this file or absolute`);
    return undefined;
  }
  return path;
}

function readTunnel(read: ConfigReader, field: Field, baseDir: string, upstream: URL | undefined): TunnelConfig | null | undefined {
  if (field.node === undefined) return null;
  const get = read.map(field, keysOf(TUNNEL));
  if (!get) return undefined;
  const sshField = read.require(get("ssh"), "write the workstation as for ssh, e.g. ssh: me@workstation.example.edu");
  const ssh = sshField ? read.string(sshField, "write the workstation as for ssh, e.g. me@workstation.example.edu") : undefined;
  const sshProblem = ssh === undefined ? undefined : sshDestinationProblem(ssh);
  if (sshProblem) read.fail(get("ssh").node, `${field.path}.ssh`, sshProblem);
  const port = read.integer(get("port"), TUNNEL.properties.port, "write sshd's port on the workstation, e.g. 22 (the default)") ?? TUNNEL.properties.port.default;
  const remoteField = get("remote");
  const remote = read.string(remoteField, "write the notebook as the workstation sees it, e.g. localhost:8888");
  if (remote !== undefined && !PATTERNS.remote.test(remote)) {
    read.fail(remoteField.node, remoteField.path, `must be host:port, with a port from 1 to 65535 (got ${quote(remote)}); write the notebook as the workstation sees it, e.g. localhost:8888`);
  }
  const identityFile = get("identity_file").node === undefined ? null : readExistingFile(read, get("identity_file"), baseDir, "the ssh private key");
  const knownHostsFile = get("known_hosts_file").node === undefined ? null : readExistingFile(read, get("known_hosts_file"), baseDir, "a known_hosts file holding the workstation's host key");
  if (upstream && !isLoopback(upstream.hostname.replace(/^\[|\]$/g, ""))) {
    read.fail(field.node, field.path, `needs a loopback upstream, since the tunnel's local end listens on 127.0.0.1 (upstream is ${upstream.host}); write upstream: http://127.0.0.1:${upstream.port || 80}`);
  }
  if (!ssh || identityFile === undefined || knownHostsFile === undefined) return undefined;
  const upstreamPort = upstream?.port || "80";
  return { ssh, port, remote: remote ?? `localhost:${upstreamPort}`, identityFile, knownHostsFile };
}

function readFrameAncestors(read: ConfigReader, field: Field): string[] | undefined {
  const items = field.node === undefined ? [] : read.list(field);
  if (!items) return undefined;
  const origins: string[] = [];
  const seen = new Map<string, Field>();
  for (const item of items) {
    const value = read.string(item, "write an origin such as https://mywebsite.example.com");
    if (value === undefined) continue;
    const url = parseUrl(value);
    const parsed = url ? new URL(url) : undefined;
    if (!parsed || !["https:", "http:"].includes(parsed.protocol) || parsed.pathname !== "/" || parsed.search) {
      read.fail(item.node, item.path, `must be an origin such as https://mywebsite.example.com (got ${quote(value)})`);
      continue;
    }
    if (isFirst(read, seen, parsed.origin, item, "origin")) origins.push(parsed.origin);
  }
  return origins.length === items.length ? origins : undefined;
}

function readLoginGuard(read: ConfigReader, field: Field): LoginGuardConfig | undefined {
  const get = read.map(field, keysOf(LOGIN_GUARD));
  if (!get) return undefined;
  const { max_failures_per_address: PER_ADDRESS, max_failures_total: TOTAL, window: WINDOW } = LOGIN_GUARD.properties;
  const maxFailuresPerAddress = read.integer(get("max_failures_per_address"), PER_ADDRESS, exampleDefault(PER_ADDRESS)) ?? DEFAULT_LOGIN_GUARD.maxFailuresPerAddress;
  const maxFailuresTotal = read.integer(get("max_failures_total"), TOTAL, exampleDefault(TOTAL)) ?? DEFAULT_LOGIN_GUARD.maxFailuresTotal;
  const windowMs = read.duration(get("window"), WINDOW, exampleDefault(WINDOW)) ?? DEFAULT_LOGIN_GUARD.windowMs;
  const paths = readLoginPaths(read, get("paths"));
  return paths && { maxFailuresPerAddress, maxFailuresTotal, windowMs, paths };
}

/** Paths of login forms: at least one (an empty list would silently turn the guard off), each once. */
function readLoginPaths(read: ConfigReader, field: Field): readonly string[] | undefined {
  if (field.node === undefined) return DEFAULT_LOGIN_GUARD.paths;
  const items = read.list(field);
  if (!items) return undefined;
  if (items.length === 0) {
    read.fail(field.node, field.path, `is empty, which would leave the login form unguarded; list its path, e.g. [${DEFAULT_LOGIN_GUARD.paths.join(", ")}] (Jupyter's; /hub/login for JupyterHub), or leave paths out for that default`);
    return undefined;
  }
  const paths: string[] = [];
  const seen = new Map<string, Field>();
  for (const item of items) {
    const value = read.string(item, "write a path such as /login");
    if (value === undefined) continue;
    if (!PATTERNS.loginPath.test(value)) read.fail(item.node, item.path, `must be a path that starts with / and has no spaces, ? or # (got ${quote(value)}); requests are matched on the path alone, e.g. /login`);
    else if (isFirst(read, seen, value, item, "path")) paths.push(value);
  }
  return paths.length === items.length ? paths : undefined;
}

function readTimeouts(read: ConfigReader, field: Field): TimeoutsConfig {
  const get = read.map(field, keysOf(TIMEOUTS));
  if (!get) return DEFAULT_TIMEOUTS;
  const { headers, client_idle, upstream_idle, drain } = TIMEOUTS.properties;
  const clientIdle = get("client_idle");
  const upstreamIdle = get("upstream_idle");
  const clientIdleMs = read.duration(clientIdle, client_idle, exampleDefault(client_idle));
  const upstreamIdleMs = read.duration(upstreamIdle, upstream_idle, exampleDefault(upstream_idle));
  const timeouts: TimeoutsConfig = {
    headersMs: read.duration(get("headers"), headers, exampleDefault(headers)) ?? DEFAULT_TIMEOUTS.headersMs,
    clientIdleMs: clientIdleMs ?? DEFAULT_TIMEOUTS.clientIdleMs,
    upstreamIdleMs: upstreamIdleMs ?? DEFAULT_TIMEOUTS.upstreamIdleMs,
    drainMs: read.duration(get("drain"), drain, exampleDefault(drain)) ?? DEFAULT_TIMEOUTS.drainMs,
  };
  // A request waiting for the notebook sends nothing on the client connection meanwhile: the
  // client's idle timer must not fire before the notebook's answer or the 504 can be sent.
  const bothRead = (clientIdleMs !== undefined || clientIdle.node === undefined) && (upstreamIdleMs !== undefined || upstreamIdle.node === undefined);
  if (bothRead && timeouts.clientIdleMs <= timeouts.upstreamIdleMs) {
    read.fail(clientIdle.node ?? upstreamIdle.node, clientIdle.path, `is ${timeouts.clientIdleMs / 1000}s, but must be longer than timeouts.upstream_idle (${timeouts.upstreamIdleMs / 1000}s): a client waiting that long for the notebook would be cut off without an answer; make client_idle at least ${timeouts.upstreamIdleMs / 1000 + 1}s, or upstream_idle shorter`);
  }
  return timeouts;
}

/** "write e.g. 5 (the default)": the remedy for a number out of range. */
function exampleDefault(node: { readonly default: unknown }): string {
  return `write e.g. ${String(node.default)} (the default)`;
}

/** IPs and CIDR ranges, IPv4 or IPv6; the same range twice is a problem. */
function readAddressList(read: ConfigReader, field: Field): AddressRange[] | undefined {
  if (field.node === undefined) return [];
  const items = read.list(field);
  if (!items) return undefined;
  const ranges: AddressRange[] = [];
  const seen = new Map<string, Field>();
  for (const item of items) {
    const value = read.string(item, "write an address or range such as 203.0.113.0/24 or 2001:db8::/32");
    if (value === undefined) continue;
    const reading = parseAddressRange(value);
    if ("problem" in reading) {
      read.fail(item.node, item.path, reading.problem);
      continue;
    }
    if (isFirst(read, seen, `${reading.range.address}/${reading.range.prefixLength}`, item, "range")) ranges.push(reading.range);
  }
  return ranges.length === items.length ? ranges : undefined;
}

/** Whether `key` is new in `seen`; a repeat is recorded at `item`, naming the first item that had it. */
function isFirst(read: ConfigReader, seen: Map<string, Field>, key: string, item: Field, what: string): boolean {
  const earlier = seen.get(key);
  if (earlier) {
    read.fail(item.node, item.path, `is the same ${what} as ${earlier.path} (${key}); keep one`);
    return false;
  }
  seen.set(key, item);
  return true;
}

/** The URL's href; undefined when it does not parse or holds whitespace, which the URL parser would silently drop or trim. */
function parseUrl(value: string): string | undefined {
  if (/[\s\u0000-\u001f]/.test(value)) return undefined;
  try {
    return new URL(value).href;
  } catch {
    return undefined;
  }
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return PATTERNS.loopbackHost.test(host);
}
