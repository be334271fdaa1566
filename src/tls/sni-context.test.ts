import assert from "node:assert/strict";
import { it } from "node:test";
import { SniContexts } from "./sni-context.js";

it("picks ALPN in the server's order (h2 before http/1.1), acme-tls/1 for a CA, nothing when no protocol is shared", () => {
  const sni = new SniContexts();
  const both = sni.alpnCallback(["h2", "http/1.1"]);
  const cases: Array<[string[], string | undefined]> = [
    [["http/1.1", "h2"], "h2"],
    [["http/1.1"], "http/1.1"],
    [["acme-tls/1"], "acme-tls/1"],
    [["spdy/3"], undefined],
  ];
  for (const [offered, chosen] of cases) assert.equal(both({ servername: "jupyter.example.com", protocols: offered }), chosen, offered.join(","));
  assert.equal(sni.ALPNCallback({ servername: "jupyter.example.com", protocols: ["h2", "http/1.1"] }), "http/1.1", "the HTTP/1.1-only listener");
});
