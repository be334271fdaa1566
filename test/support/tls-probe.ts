import type { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity, connect } from "node:tls";

/**
 * The leaf certificate a fresh handshake for `name` gets from 127.0.0.1:`port`, verified against
 * `ca` only. For an IP address no SNI is sent, as browsers do (RFC 6066 §3), and the certificate
 * must name that address.
 */
export function servedCertificate(port: number, name: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const target = isIP(name) === 0 ? { servername: name } : { checkServerIdentity: (_: string, cert: Parameters<typeof checkServerIdentity>[1]) => checkServerIdentity(name, cert) };
    const socket = connect({ host: "127.0.0.1", port, ca, ...target }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error("no peer certificate"));
    });
    socket.on("error", reject);
  });
}
