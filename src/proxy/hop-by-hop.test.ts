import assert from "node:assert/strict";
import { it } from "node:test";
import { responseHeadersOf, withoutHopByHop } from "./hop-by-hop.js";

it("forwards a request's end-to-end headers only: no hop-by-hop ones, none its Connection names, no HTTP/2 pseudo-header fields", () => {
  const kept = withoutHopByHop({
    ":method": "GET", ":path": "/lab", ":authority": "jupyter.example.com", ":scheme": "https",
    host: "jupyter.example.com", connection: "keep-alive, x-secret", "keep-alive": "timeout=5", te: "trailers", upgrade: "h2c",
    "x-secret": "1", cookie: "a=1; b=2", accept: "text/html",
  });
  assert.deepEqual(kept, { host: "jupyter.example.com", cookie: "a=1; b=2", accept: "text/html" });
});

it("relays no connection-specific header in a response (HTTP/2 forbids them, RFC 9113 §8.2.2)", () => {
  const raw = ["Content-Type", "text/plain", "Connection", "keep-alive, X-Hop", "Keep-Alive", "timeout=5", "Transfer-Encoding", "chunked", "Upgrade", "websocket", "Proxy-Connection", "close", "X-Hop", "1", "Set-Cookie", "a=1"];
  assert.deepEqual({ ...responseHeadersOf(raw.map((v) => Buffer.from(v, "latin1"))) }, { "content-type": "text/plain", "set-cookie": ["a=1"] });
});
