import type { X509Certificate } from "node:crypto";
import { connect } from "node:tls";

/** The leaf certificate a fresh handshake for `name` gets from 127.0.0.1:`port`, verified against `ca` only. */
export function servedCertificate(port: number, name: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: name, ca }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error("no peer certificate"));
    });
    socket.on("error", reject);
  });
}
