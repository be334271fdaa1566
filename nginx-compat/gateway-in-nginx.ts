/**
 * What the gateway does by itself, as nginx directive arguments. export-nginx writes them, and
 * import-nginx reads them back as the gateway's own behaviour, so an exported config imports
 * without warnings. The values follow src/tls/tls-profile.ts, src/guard/security-headers.ts and
 * src/proxy/, which nginx-compat may not import.
 */
export const GATEWAY_IN_NGINX = {
  /** ssl_protocols: TLS 1.2 and 1.3 only (RFC 8996). */
  sslProtocols: "TLSv1.2 TLSv1.3",
  /** ssl_ciphers: the forward-secret AEAD suites of TLS 1.2, in OpenSSL names; TLS 1.3 suites are nginx's defaults. */
  sslCiphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
  /** ssl_ecdh_curve */
  sslEcdhCurve: "X25519:prime256v1:secp384r1",
  /** proxy_connect_timeout: undici's connect timeout, which the gateway keeps. */
  proxyConnectTimeout: "10s",
  /**
   * proxy_read_timeout and proxy_send_timeout. nginx has one timer for HTTP and WebSockets; a day
   * keeps a quiet kernel WebSocket open, which the gateway never cuts (README: the difference).
   */
  proxyIdleTimeout: "1d",
  /** proxy_cookie_flags: every cookie from the notebook gets Secure. */
  proxyCookieFlags: "~ secure",
  /** add_header, on every response; the framing headers depend on the site (frame_ancestors). */
  securityHeaders: { "Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin" },
  /** X-Frame-Options when the site allows no other frame ancestors. */
  frameOptions: "SAMEORIGIN",
  /** What a map compares to tell a same-site Origin: the Origin check, and presenting it as the notebook's. */
  originPair: "$http_origin|https://$http_host",
  /** Likewise for a same-site Referer, presented as the notebook's. */
  refererPair: "$http_referer|https://$http_host",
  /** The Origin check's map input: a foreign Origin, the method, and whether it is an upgrade. */
  crossSiteKey: "$origin_is_foreign:$request_method:$http_upgrade",
  /** Set by that map for requests the gateway refuses with 403: `if ($refuse_cross_site) { return 403; }`. */
  refuseCrossSite: "$refuse_cross_site",
  /**
   * The server of an IP-address site is nginx's default_server (clients send no SNI for an
   * address) and refuses other names itself with 421: `if ($host !~* ^(?:NAMES)$) { return 421; }`.
   */
  otherNamesGuard: /^\(\$host !~\* \^\(\?:(.+)\)\$\)$/,
} as const;
