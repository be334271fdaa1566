import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { OutgoingResponse } from "../guard/incoming-request.js";
import { responseHeadersOf } from "./hop-by-hop.js";

/** What the proxy does with a notebook's answer. */
export interface RelayEvents {
  /**
   * Status and headers (hop-by-hop dropped), before any body byte: rewrite them and write the
   * head, and return true; or answer the client otherwise and return false to drop the notebook's answer.
   */
  onHeaders(statusCode: number, headers: IncomingHttpHeaders): boolean;
  /** The exchange failed; `clientGone` when the client closed first and the upstream request was aborted for it. */
  onError(err: Error, clientGone: boolean): void;
  /** The exchange is over, whichever way: called once. */
  onSettled(): void;
}

/**
 * An undici dispatch handler that streams the notebook's response into the client's
 * ServerResponse with backpressure both ways. It replaces undici's stream() API, whose per-request
 * AsyncResource, finished() listeners and abort signal showed in small-request profiles. A client
 * that goes away aborts the upstream request (also one still waiting for a pooled connection).
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  private abortUpstream: ((err: Error) => void) | undefined;
  private clientGone = false;
  private done = false;
  /** A 204 or 304 was relayed: its head is the whole answer (RFC 9110 §15.3.5, §15.4.5). */
  private bodiless = false;

  constructor(
    private readonly res: OutgoingResponse,
    private readonly events: RelayEvents,
  ) {
    res.once("close", this.onClientClose);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.clientGone) abort(new Error("the client closed the connection"));
    else this.abortUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx informational answers are not relayed; Node's server answers Expect itself.
    if (statusCode < 200) return true;
    if (!this.events.onHeaders(statusCode, responseHeadersOf(rawHeaders))) {
      const abort = this.abortUpstream;
      this.finish();
      abort?.(new Error("the notebook's answer was refused"));
      return false;
    }
    this.bodiless = statusCode === 204 || statusCode === 304;
    // Never resume undici from inside a drain: with pipelined requests Node emits this response's
    // drain while another response's write runs inside undici's parser, which may not re-enter.
    this.res.on("drain", () => setImmediate(resume));
    return !this.res.writableNeedDrain;
  }

  onData(chunk: Buffer): boolean {
    // Both response kinds take a Buffer; their typings' overloads do not unify.
    return (this.res as { write(chunk: Buffer): boolean }).write(chunk);
  }

  onComplete(): void {
    this.finish();
    this.res.end();
  }

  onError(err: Error): void {
    if (this.done) return;
    // A 204 or 304 that announced a Content-Length it (rightly) did not send, or sent a body it
    // may not have: the client has its whole answer; undici drops that connection.
    if (this.bodiless && (err as NodeJS.ErrnoException).code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH") {
      this.onComplete();
      return;
    }
    this.finish();
    // Outside undici's own error handling, as its stream() API did: the proxy may retry from here.
    const clientGone = this.clientGone;
    queueMicrotask(() => this.events.onError(err, clientGone));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.abortUpstream = undefined;
    this.res.off("close", this.onClientClose);
    this.events.onSettled();
  }

  private readonly onClientClose = (): void => {
    // Ended: the whole answer was handed over (finish() normally removed this listener first).
    // Not writableFinished: an HTTP/2 response whose stream the client reset reads as finished.
    if (this.res.writableEnded) return;
    this.clientGone = true;
    this.abortUpstream?.(new Error("the client closed the connection"));
  };
}
