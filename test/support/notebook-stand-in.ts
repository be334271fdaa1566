import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";

/**
 * A request handler for a test upstream that stands in for a notebook's HTTP: it answers the
 * gateway's password probe (`GET /api/kernels` without credentials) with 403, as a
 * password-protected Jupyter does, and passes everything else to `handler`. The gateway refuses
 * an upstream it cannot prove password-protected; the probe is not shown to `handler`.
 */
export function notebookStandIn(handler: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && req.url === "/api/kernels" && req.headers.cookie === undefined) {
      res.writeHead(403, { "content-type": "application/json" }).end('{"message": "Forbidden"}');
      return;
    }
    handler(req, res);
  };
}
