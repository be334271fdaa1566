import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

/**
 * A request from a browser on the HTTPS listener: HTTP/1.x (IncomingMessage) or HTTP/2 (Node's
 * compatibility API). Both pass the same guard and proxy; where they differ (request-hygiene.ts,
 * whether a body follows), the code asks `instanceof Http2ServerRequest` (an HTTP/1 request
 * line may say HTTP/2.0 too).
 */
export type IncomingRequest = IncomingMessage | Http2ServerRequest;

/** The response to an IncomingRequest. */
export type OutgoingResponse = ServerResponse | Http2ServerResponse;
