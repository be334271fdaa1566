import type { IncomingMessage, ServerResponse } from "node:http";
import type { FileCertStore } from "../tls/cert-store.js";

/** Path prefix of HTTP-01 challenges (RFC 8555 §8.3). */
export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/**
 * Answers an HTTP-01 challenge from the store, so whichever gateway process holds port 80
 * (`serve`, or `renew` when nothing else runs) answers for any of them.
 */
export async function answerHttp01(req: IncomingMessage, res: ServerResponse, store: FileCertStore): Promise<void> {
  const token = (req.url ?? "").slice(CHALLENGE_PREFIX.length).split("?")[0] ?? "";
  const keyAuthorization = await store.readChallenge(token);
  if (keyAuthorization === null) {
    res.writeHead(404, { "content-type": "text/plain" }).end("no such challenge\n");
    return;
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "cache-control": "no-store" }).end(keyAuthorization.trim());
}
