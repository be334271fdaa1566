import { isIP } from "node:net";
import { type AddressRange, type GatewayConfig, type SiteConfig } from "../src/config/gateway-config.js";
import { ipAddressSite } from "../src/config/site-table.js";
import { GATEWAY_IN_NGINX as GATEWAY } from "./gateway-in-nginx.js";

/** Where certbot's webroot answers HTTP-01 challenges in the exported :80 server. */
const CERTBOT_WEBROOT = "/var/www/certbot";

/**
 * The nginx configuration (for nginx's http block) that behaves like the gateway with `config`:
 * the seed recipe's server block with its fixes (Host and Origin presented as the notebook expects,
 * the browser's Origin checked, upgrade map, timeouts fit for kernels, TLS 1.2/1.3, security
 * headers, no body cap), plus the certbot and cron lines as comments. Settings nginx cannot
 * express are named in comments.
 */
export function exportServerBlocks(config: GatewayConfig): string {
  const listenHttps = listenAddress(config.listen.address, config.listen.httpsPort);
  const acmeSites = config.sites.filter((s) => s.tls.kind === "acme");
  // Clients send no SNI for an IP address: nginx then picks the default_server, which must be that site's (as the gateway's defaultSite).
  const ipSite = ipAddressSite(config.sites);
  const out = [
    `# nginx configuration equivalent to ${config.file}, made by \`gateway export-nginx\`.`,
    "# Put it inside nginx's http block (e.g. /etc/nginx/conf.d/notebook.conf), then: nginx -t && systemctl reload nginx",
    ...(acmeSites.length > 0
      ? [
          ...certbotLines(config, acmeSites),
          "# and renewed by cron (or certbot's own systemd timer), reloading nginx to use them:",
          '#   17 3,15 * * * certbot renew --quiet --deploy-hook "systemctl reload nginx"',
        ]
      : []),
    ...(config.admin ? [`# admin (${config.admin.host}:${config.admin.port}: /healthz, /status, /metrics) has no nginx equivalent; stub_status is the closest.`] : []),
    "",
    "# WebSockets (kernels, terminals): Connection: upgrade only when the client asks for it, and no",
    "# Connection header otherwise, so connections to the notebook are kept alive.",
    "map $http_upgrade $connection_upgrade {",
    "    default upgrade;",
    "    '' '';",
    "}",
    "",
    "# The gateway's Origin check: an upgrade or a state-changing request (not GET/HEAD/OPTIONS)",
    "# whose Origin is not this site itself is refused with 403 before the notebook sees it.",
    `map "${GATEWAY.originPair}" $origin_is_foreign {`,
    '    "~^\\|" 0;',
    '    "~^([^|]+)\\|\\1$" 0;',
    "    default 1;",
    "}",
    `map "${GATEWAY.crossSiteKey}" ${GATEWAY.refuseCrossSite} {`,
    '    "~^1:(GET|HEAD|OPTIONS):$" 0;',
    '    "~^1:" 1;',
    "    default 0;",
    "}",
    "",
    ...(ipSite
      ? [`# No catch-all server: ${ipSite.hosts[0] ?? ""}'s server is the default (clients send no SNI for an IP address) and refuses other names (421).`]
      : [
          "# Any other name or an unknown TLS server name: refused, as the gateway does (421).",
          "server {",
          `    listen ${listenHttps} ssl${config.listen.http2 ? " http2" : ""} default_server;`,
          "    ssl_reject_handshake on;",
          ...securityHeaderLines([]),
          "    return 421;",
          "}",
        ]),
  ];
  config.sites.forEach((site, i) => out.push("", ...siteServer(site, `site${i + 1}`, config, site === ipSite)));
  if (config.listen.httpPort !== null) out.push("", ...redirectServer(config, acmeSites.length > 0 && config.acme.challenge !== "dns-01"));
  return `${out.join("\n")}\n`;
}

/**
 * certbot's arguments for one site, its certificate named after the site's first name (the path
 * ssl_certificate gives): IP addresses with --ip-address, and the site's profile, shortlived for
 * IP addresses as the gateway asks for it.
 */
function certbotSiteArguments(site: SiteConfig, email: string | null): string {
  const ip = site.hosts.some((h) => isIP(h) !== 0);
  const profile = site.acmeProfile ?? (ip ? "shortlived" : null);
  const names = site.hosts.map((h) => (isIP(h) !== 0 ? `--ip-address ${h}` : `-d ${h}`)).join(" ");
  return `--cert-name ${site.hosts[0] ?? ""} ${names}${profile ? ` --preferred-profile ${profile}` : ""}${email ? ` -m ${email} --agree-tos` : " --register-unsafely-without-email --agree-tos"}`;
}

/** A name as nginx's server_name matches the Host header: an IPv6 address in brackets. */
function serverName(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function siteServer(site: SiteConfig, id: string, config: GatewayConfig, isDefault: boolean): string[] {
  const upstream = site.upstream;
  const upstreamOrigin = upstream.origin;
  const portSuffix = config.listen.httpsPort === 443 ? "" : `:${config.listen.httpsPort}`;
  return [
    `# ${site.hosts.join(", ")} (gateway.yaml ${site.position})`,
    "# The notebook sees a same-site request to its own address, so it needs no config change:",
    "# the browser's Origin/Referer for this site become the notebook's origin; foreign ones pass unchanged.",
    `map "${GATEWAY.originPair}" $${id}_origin {`,
    `    "~^([^|]+)\\|\\1$" "${upstreamOrigin}";`,
    "    default $http_origin;",
    "}",
    `map "${GATEWAY.refererPair}" $${id}_referer {`,
    `    "~^https://(?<${id}_rhost>[^/|]+)\\|https://\\k<${id}_rhost>$" "${upstreamOrigin}/";`,
    `    "~^https://(?<${id}_host>[^/|]+)(?<${id}_path>/[^|]*)\\|https://\\k<${id}_host>$" "${upstreamOrigin}$${id}_path";`,
    "    default $http_referer;",
    "}",
    `upstream ${id}_notebook {`,
    `    server ${upstream.hostname}:${upstream.port || (upstream.protocol === "https:" ? 443 : 80)};`,
    "    keepalive 16;",
    "}",
    "server {",
    // nginx 1.22's spelling (1.25 takes `http2 on;` and warns about this one).
    `    listen ${listenAddress(config.listen.address, config.listen.httpsPort)} ssl${config.listen.http2 ? " http2" : ""}${isDefault ? " default_server" : ""};`,
    `    server_name ${site.hosts.map(serverName).join(" ")};`,
    ...(isDefault
      ? [
          "    # The default server (no SNI for an IP address): any other name is refused, as the gateway does (421).",
          `    if ($host !~* ^(?:${site.hosts.map((h) => serverName(h).replace(/[.[\]]/g, "\\$&")).join("|")})$) {`,
          "        return 421;",
          "    }",
        ]
      : []),
    ...certificateLines(site),
    `    ssl_protocols ${GATEWAY.sslProtocols};`,
    `    ssl_ciphers ${GATEWAY.sslCiphers};`,
    "    ssl_prefer_server_ciphers on;",
    `    ssl_ecdh_curve ${GATEWAY.sslEcdhCurve};`,
    "    # No OCSP stapling: Let's Encrypt ended OCSP in 2025.",
    ...(site.clientCertificatesRequired ? ["    # client_certificates: required has no exported equivalent: the gateway's client CA and revocations live in its storage."] : []),
    ...accessLines(site),
    "    # login_guard (failed logins counted per address) has no nginx equivalent; fail2ban on the access log comes closest.",
    ...(config.logs.access ? [`    access_log ${config.logs.access === "stdout" ? "/dev/stdout" : config.logs.access} combined;`] : []),
    "",
    "    # Uploads and downloads of any size stream through, as with the gateway.",
    "    client_max_body_size 0;",
    `    client_header_timeout ${config.timeouts.headersMs / 1000}s;`,
    `    client_body_timeout ${config.timeouts.clientIdleMs / 1000}s;`,
    `    send_timeout ${config.timeouts.clientIdleMs / 1000}s;`,
    `    keepalive_timeout ${config.timeouts.clientIdleMs / 1000}s;`,
    "",
    `    if (${GATEWAY.refuseCrossSite}) {`,
    "        return 403;",
    "    }",
    "",
    "    # The gateway's security headers, on every response (no add_header below, so these apply).",
    ...securityHeaderLines(site.frameAncestors),
    "",
    "    location / {",
    `        proxy_pass ${upstream.protocol}//${id}_notebook;`,
    "        proxy_http_version 1.1;",
    "        proxy_set_header Upgrade $http_upgrade;",
    "        proxy_set_header Connection $connection_upgrade;",
    `        proxy_set_header Host ${upstream.host};`,
    `        proxy_set_header Origin $${id}_origin;`,
    `        proxy_set_header Referer $${id}_referer;`,
    "        # Set here, never passed through from clients (empty values are not sent).",
    "        proxy_set_header X-Forwarded-For $remote_addr;",
    "        proxy_set_header X-Forwarded-Proto https;",
    "        proxy_set_header X-Forwarded-Host $http_host;",
    '        proxy_set_header X-Forwarded-Port "";',
    '        proxy_set_header X-Real-IP "";',
    '        proxy_set_header Forwarded "";',
    "        # Redirects to the notebook's own address point at the site; cookies are Secure.",
    `        proxy_redirect ${upstreamOrigin}/ https://$host${portSuffix}/;`,
    `        proxy_cookie_flags ${GATEWAY.proxyCookieFlags};`,
    "        # The site's security headers replace the notebook's own.",
    "        proxy_hide_header Content-Security-Policy;",
    "        proxy_hide_header X-Frame-Options;",
    "        proxy_hide_header Strict-Transport-Security;",
    "        proxy_hide_header X-Content-Type-Options;",
    "        proxy_hide_header Referrer-Policy;",
    "        proxy_buffering off;",
    "        proxy_request_buffering off;",
    `        proxy_connect_timeout ${GATEWAY.proxyConnectTimeout};`,
    "        # A kernel WebSocket may be quiet for hours; the gateway never cuts one (nginx's timer applies to HTTP too).",
    `        proxy_read_timeout ${GATEWAY.proxyIdleTimeout};`,
    `        proxy_send_timeout ${GATEWAY.proxyIdleTimeout};`,
    "    }",
    ...(site.tunnel ? [`    # tunnel: keep \`ssh -N -L 127.0.0.1:${upstream.port}:${site.tunnel.remote} -p ${site.tunnel.port} ${site.tunnel.ssh}\` up yourself (systemd unit or autossh).`] : []),
    "}",
  ];
}

/** The gateway's security headers (src/guard/security-headers.ts), on every response. */
function securityHeaderLines(frameAncestors: readonly string[]): string[] {
  return [
    ...Object.entries(GATEWAY.securityHeaders).map(([name, value]) => `    add_header ${name} ${value} always;`),
    `    add_header Content-Security-Policy "frame-ancestors ${["'self'", ...frameAncestors].join(" ")}" always;`,
    ...(frameAncestors.length === 0 ? [`    add_header X-Frame-Options ${GATEWAY.frameOptions} always;`] : []),
  ];
}

function certificateLines(site: SiteConfig): string[] {
  const primary = site.hosts[0] as string;
  switch (site.tls.kind) {
    case "files":
      return [`    ssl_certificate ${site.tls.certFile};`, `    ssl_certificate_key ${site.tls.keyFile};`];
    case "acme":
      return [`    ssl_certificate /etc/letsencrypt/live/${primary}/fullchain.pem;`, `    ssl_certificate_key /etc/letsencrypt/live/${primary}/privkey.pem;`];
    case "internal":
      return [
        "    # tls: internal (the gateway's local CA) has no nginx equivalent: issue a certificate, e.g. with mkcert, and put it here.",
        `    ssl_certificate /etc/nginx/tls/${primary}.crt;`,
        `    ssl_certificate_key /etc/nginx/tls/${primary}.key;`,
      ];
  }
}

/** The gateway's rule: deny wins, then allow (if any), else everyone. */
function accessLines(site: SiteConfig): string[] {
  const plain = (range: AddressRange): string => (range.prefixLength === (range.family === "ipv4" ? 32 : 128) ? range.address : `${range.address}/${range.prefixLength}`);
  return [...site.deny.map((r) => `    deny ${plain(r)};`), ...site.allow.map((r) => `    allow ${plain(r)};`), ...(site.allow.length > 0 ? ["    deny all;"] : [])];
}

/** How certbot gets the acme sites' certificates, answering the challenge the way the gateway does: one command per site. */
function certbotLines(config: GatewayConfig, acmeSites: readonly SiteConfig[]): string[] {
  const commands = (how: string): string[] => acmeSites.map((site) => `#   certbot certonly ${how} ${certbotSiteArguments(site, config.acme.email)}`);
  const version = acmeSites.some((s) => s.hosts.some((h) => isIP(h) !== 0)) ? " (5.3 or later for --ip-address)" : "";
  const dns = config.acme.dns;
  if (!dns) {
    return [`# Certificates (tls: acme) come from certbot${version}, answered by the :80 server below:`, `#   mkdir -p ${CERTBOT_WEBROOT}`, ...commands(`--webroot -w ${CERTBOT_WEBROOT}`)];
  }
  if (dns.kind === "hook") {
    const cleanup = dns.cleanupHook ? ` --manual-cleanup-hook ${dns.cleanupHook}` : "";
    return ["# Certificates (tls: acme) come from certbot over DNS-01, with the same hooks:", ...commands(`--manual --preferred-challenges dns --manual-auth-hook ${dns.authHook}${cleanup}`)];
  }
  // certbot's plugin takes an IP address only.
  const server = isIP(dns.server.host) ? dns.server.host : `<the IP address of ${dns.server.host}>`;
  return [
    "# Certificates (tls: acme) come from certbot over DNS-01 with its rfc2136 plugin (apt-get install python3-certbot-dns-rfc2136),",
    `# given /etc/letsencrypt/rfc2136.ini (chmod 600): dns_rfc2136_server = ${server}, dns_rfc2136_port = ${dns.server.port},`,
    `# dns_rfc2136_name = ${dns.keyName ?? "<the key's name in " + dns.keyFile + ">"}, dns_rfc2136_secret = <its secret>, dns_rfc2136_algorithm = ${(dns.algorithm ?? "hmac-sha256").toUpperCase()}:`,
    ...commands("--dns-rfc2136 --dns-rfc2136-credentials /etc/letsencrypt/rfc2136.ini"),
  ];
}

function redirectServer(config: GatewayConfig, answersAcme: boolean): string[] {
  const portSuffix = config.listen.httpsPort === 443 ? "" : `:${config.listen.httpsPort}`;
  return [
    "# Port 80: ACME HTTP-01 answers, everything else redirected to https (308 keeps the method).",
    "server {",
    `    listen ${listenAddress(config.listen.address, config.listen.httpPort ?? 80)};`,
    `    server_name ${config.sites.flatMap((s) => s.hosts).map(serverName).join(" ")};`,
    ...(answersAcme ? ["    location /.well-known/acme-challenge/ {", `        root ${CERTBOT_WEBROOT};`, "    }"] : []),
    "    location / {",
    `        return 308 https://$host${portSuffix}$request_uri;`,
    "    }",
    "}",
  ];
}

function listenAddress(address: string, port: number): string {
  if (address === "0.0.0.0") return String(port);
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
