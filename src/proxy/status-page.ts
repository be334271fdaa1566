import { STATUS_CODES, type OutgoingHttpHeaders } from "node:http";
import type { Duplex } from "node:stream";
import type { SiteConfig } from "../config/gateway-config.js";
import type { OutgoingResponse } from "../guard/incoming-request.js";
import { applySecurityHeaders } from "../guard/security-headers.js";

/** A short page the gateway answers itself with: what happened and what to do; never a stack. */
export function renderStatusPage(status: number, title: string, hint: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${status} ${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(hint)}</p>
<p style="color: #666">notebook-gateway · ${status}</p>
</body></html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Answers an HTTP request with a status page and the site's security headers. */
export function sendStatusPage(res: OutgoingResponse, status: number, title: string, hint: string, site: SiteConfig | undefined, extraHeaders: OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = renderStatusPage(status, title, hint);
  const headers: OutgoingHttpHeaders = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...extraHeaders };
  applySecurityHeaders(headers, site);
  res.writeHead(status, headers).end(body);
}

/** How long a socket the gateway is done with may take to flush and close before it is destroyed. */
export const CLOSE_GRACE_MS = 5_000;

/** Answers a refused WebSocket upgrade on the raw socket, then closes it (within CLOSE_GRACE_MS, whatever the client does). */
export function refuseUpgrade(socket: Duplex, status: number, title: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${title}\n`;
  socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  closeWithin(socket, CLOSE_GRACE_MS);
}

/**
 * Ends `socket` (flushing what it holds) and destroys it if it is not closed after `graceMs`:
 * a peer that never closes its side (a vanished laptop) must not hold the socket for good.
 */
export function closeWithin(socket: Duplex, graceMs: number): void {
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), graceMs);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
