import type { IncomingMessage } from "node:http";
import { Http2ServerRequest } from "node:http2";
import { LIMITS } from "../config/gateway-config.js";
import type { IncomingRequest } from "./incoming-request.js";

/** Why a request is refused before anything reads its Host or forwards it. */
export interface Malformed {
  readonly status: number;
  readonly title: string;
  readonly hint: string;
}

/** RFC 3986 host (reg-name, IPv4, or an IP literal in brackets) with an optional port: no userinfo, no path. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::([0-9]{0,5}))?$/;

function isHostValue(host: string): boolean {
  const match = HOST_VALUE.exec(host);
  return match !== null && Number(match[1] ?? 0) <= 65535;
}
/** absolute-form (RFC 9112 §3.2.2): scheme "://" authority, then the path and query (the fragment never appears in a target). */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)$/i;

/**
 * Makes a request unambiguous before the guard reads it, for requests and WebSocket upgrades
 * alike, on top of what Node's parser already refuses (obs-fold, bare LF, NUL, CL+TE, duplicate
 * Content-Length, chunk-size and chunk-data errors, headers past 16 KiB): the things RFC 9112
 * says a server MUST refuse that Node lets through, and what nginx refuses too. Rewrites, in
 * place, an absolute-form target to origin-form and its authority into Host (§3.2.2: the
 * target's authority wins), so the guard checks the name the request really addresses and the
 * notebook only ever sees `/path?query`. An HTTP/2 request gets the equivalent checks (see
 * normaliseHttp2Request). Returns why the request is refused, or null.
 */
export function normaliseRequest(req: IncomingRequest): Malformed | null {
  if (hasTooManyFields(req.rawHeaders)) {
    return { status: 431, title: "Too many header fields", hint: `A request may carry at most ${LIMITS.requestHeaders} header fields; this one had more. Clear this site's cookies if they grew, or send fewer headers.` };
  }
  // An HTTP/2 stream, not an HTTP/1 request line that says "HTTP/2.0" (which gets the 505).
  if (req instanceof Http2ServerRequest) return normaliseHttp2Request(req);
  if (req.httpVersionMajor !== 1) {
    return { status: 505, title: "HTTP version not supported", hint: `This gateway speaks HTTP/2, HTTP/1.1 and 1.0; the request said HTTP/${req.httpVersion}.` };
  }
  return normaliseHttp1Request(req);
}

function normaliseHttp1Request(req: IncomingMessage): Malformed | null {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.length === 4 && raw[i]?.toLowerCase() === "host") hosts++;
  if (hosts > 1) return badRequest("The request has more than one Host header (RFC 9112 §3.2).");
  const te = req.headers["transfer-encoding"];
  if (te !== undefined) {
    // §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    if (req.httpVersionMinor === 0) return badRequest("An HTTP/1.0 request cannot use Transfer-Encoding (RFC 9112 §6.1).");
    // Node accepts codings before the final chunked ("identity, chunked"); only chunked means one thing.
    if (te.trim().toLowerCase() !== "chunked") return { status: 501, title: "Transfer coding not implemented", hint: `Only Transfer-Encoding: chunked is accepted for a request body (got "${te}").` };
  }
  const target = req.url ?? "";
  if (!target.startsWith("/")) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (!absolute) return badRequest("The request target must be a path (/...) or an absolute http(s) URL.");
    // The authority replaces Host (§3.2.2), once it is one (userinfo never reaches Host, or a log); an empty path is "/" (§3.2.1).
    if (!isHostValue(absolute[1] ?? "")) return badRequest("The target's authority is not a valid host[:port] (RFC 9112 §3.2.2).");
    req.headers.host = absolute[1];
    req.url = absolute[2]?.startsWith("/") ? absolute[2] : `/${absolute[2] ?? ""}`;
  }
  return checkHost(req.headers);
}

/**
 * HTTP/2 has no Host or Transfer-Encoding ambiguity (Node refuses connection-specific fields,
 * duplicate pseudo-header fields, and a Content-Length that the DATA frames contradict). What is
 * left: :authority becomes Host, and a Host that names another site than :authority is refused
 * (RFC 9113 §8.3.1), so the guard and the notebook see one name; :path must be origin-form
 * (absolute-form does not exist in HTTP/2). The pseudo-header fields stay in req.headers (Node
 * reads method and url from there); hop-by-hop.ts never forwards them to the notebook.
 */
function normaliseHttp2Request(req: Http2ServerRequest): Malformed | null {
  const headers = req.headers;
  const authority = headers[":authority"];
  if (authority !== undefined) {
    if (headers.host !== undefined && headers.host.toLowerCase() !== authority.toLowerCase()) {
      delete headers.host;
      return badRequest("The request's Host header names another site than its :authority (RFC 9113 §8.3.1).");
    }
    headers.host = authority;
  }
  if (!req.url.startsWith("/")) return badRequest("The request's :path must be a path (/...) (RFC 9113 §8.3.1).");
  return checkHost(headers);
}

/** Pseudo-header fields (HTTP/2's :method, :path and the like) do not count toward the limit. */
function hasTooManyFields(raw: readonly string[]): boolean {
  if (raw.length / 2 <= LIMITS.requestHeaders) return false;
  let fields = 0;
  for (let i = 0; i < raw.length; i += 2) if (!raw[i]?.startsWith(":")) fields++;
  return fields > LIMITS.requestHeaders;
}

function checkHost(headers: { host?: string }): Malformed | null {
  const host = headers.host;
  if (host !== undefined && !isHostValue(host)) {
    delete headers.host; // it may hold user:password@; nothing logs it
    return badRequest("The Host header is not a valid host[:port] (RFC 9112 §3.2).");
  }
  return null;
}

function badRequest(hint: string): Malformed {
  return { status: 400, title: "Bad request", hint };
}
