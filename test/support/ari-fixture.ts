import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { trustingAgent } from "./notebook-client.js";
import type { Pebble } from "./pebble.js";

/**
 * Pebble 2.4 has no ACME Renewal Information: this stands in front of its directory, adds
 * `renewalInfo` (RFC 9773) and answers it with the window the test sets. Everything else in the
 * directory still points at pebble itself.
 */
export interface AriFixture {
  readonly directoryUrl: string;
  window: { start: Date; end: Date };
  /** certIDs the gateway asked about. */
  readonly queried: string[];
  close(): void;
}

export async function startAriFixture(pebble: Pebble): Promise<AriFixture> {
  const agent = trustingAgent(pebble.httpsCaPem);
  let server: Server | undefined;
  const fixture: AriFixture = {
    directoryUrl: "",
    window: { start: new Date(Date.now() + 30 * 86_400_000), end: new Date(Date.now() + 31 * 86_400_000) },
    queried: [],
    close: () => server?.close(),
  };
  server = createServer({ cert: pebble.httpsLeaf.certPem, key: pebble.httpsLeaf.keyPem }, (req, res) => {
    void (async () => {
      const { port } = server?.address() as AddressInfo;
      if (req.url === "/dir") {
        const upstream = await request(pebble.directoryUrl, { dispatcher: agent });
        const directory = (await upstream.body.json()) as Record<string, unknown>;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ ...directory, renewalInfo: `https://127.0.0.1:${port}/renewal-info` }));
      } else if (req.url?.startsWith("/renewal-info/")) {
        fixture.queried.push(req.url.slice("/renewal-info/".length));
        res.setHeader("content-type", "application/json");
        res.setHeader("retry-after", "1");
        res.end(JSON.stringify({ suggestedWindow: { start: fixture.window.start.toISOString(), end: fixture.window.end.toISOString() } }));
      } else {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  Object.assign(fixture, { directoryUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir` });
  return fixture;
}
