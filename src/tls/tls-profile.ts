import type { SecureContextOptions } from "node:tls";

/**
 * The TLS settings every site gets: TLS 1.2 and 1.3 only; on 1.2 only forward-secret AEAD suites
 * (ECDHE with AES-GCM or ChaCha20-Poly1305), in the server's order of preference. TLS 1.3 suites
 * are all AEAD already. No CBC suites, so no LUCKY13 and no "average" cipher list findings.
 */
export const TLS_PROFILE: SecureContextOptions = {
  minVersion: "TLSv1.2",
  maxVersion: "TLSv1.3",
  ciphers: [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  honorCipherOrder: true,
  ecdhCurve: "X25519:P-256:P-384",
};
