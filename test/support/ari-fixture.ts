import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { trustingAgent } from "./notebook-client.js";
import type { Pebble } from "./pebble.js";

/**
 * What pebble 2.4 lacks, in front of it: ACME Renewal Information (RFC 9773), answered with the
 * window the test sets, and ACME profiles (draft-ietf-acme-profiles): the directory's
 * meta.profiles lists what the test sets, and every newOrder payload is recorded. Every other
 * request is passed to pebble with this fixture's Host, so the URLs pebble hands out (and the
 * JWS `url` it checks) stay on the fixture.
 */
export interface AriFixture {
  readonly directoryUrl: string;
  window: { start: Date; end: Date };
  /** certIDs the gateway asked about. */
  readonly queried: string[];
  /** meta.profiles the directory lists (name → description); empty: none, as pebble's own. */
  profiles: Record<string, string>;
  /** The payloads of the newOrder requests the gateway sent, in order. */
  readonly newOrders: Array<Record<string, unknown>>;
  close(): void;
}

export async function startAriFixture(pebble: Pebble): Promise<AriFixture> {
  const agent = trustingAgent(pebble.httpsCaPem);
  const pebbleOrigin = new URL(pebble.directoryUrl).origin;
  const pebbleDirectory = (await (await request(pebble.directoryUrl, { dispatcher: agent })).body.json()) as { newOrder: string };
  const newOrderPath = new URL(pebbleDirectory.newOrder).pathname;
  let server: Server | undefined;
  const fixture: AriFixture = {
    directoryUrl: "",
    window: { start: new Date(Date.now() + 30 * 86_400_000), end: new Date(Date.now() + 31 * 86_400_000) },
    queried: [],
    profiles: {},
    newOrders: [],
    close: () => server?.close(),
  };
  /** Forwards the request to pebble as it came (Host included); returns pebble's answer. */
  const forward = async (method: string, path: string, headers: Record<string, string>, body: Buffer) => {
    const res = await request(`${pebbleOrigin}${path}`, { method: method as "GET", headers, body: body.length > 0 ? body : null, dispatcher: agent });
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  };
  server = createServer({ cert: pebble.httpsLeaf.certPem, key: pebble.httpsLeaf.keyPem }, (req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const headers = { host: req.headers.host ?? "", ...(req.headers["content-type"] ? { "content-type": req.headers["content-type"] } : {}) };
      const { port } = server?.address() as AddressInfo;
      if (req.url === "/dir") {
        const upstream = await forward("GET", "/dir", headers, body);
        const directory = JSON.parse(upstream.body.toString()) as { meta?: Record<string, unknown> };
        const meta = Object.keys(fixture.profiles).length > 0 ? { ...directory.meta, profiles: fixture.profiles } : directory.meta;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ ...directory, meta, renewalInfo: `https://127.0.0.1:${port}/renewal-info` }));
      } else if (req.url?.startsWith("/renewal-info/")) {
        fixture.queried.push(req.url.slice("/renewal-info/".length));
        res.setHeader("content-type", "application/json");
        res.setHeader("retry-after", "1");
        res.end(JSON.stringify({ suggestedWindow: { start: fixture.window.start.toISOString(), end: fixture.window.end.toISOString() } }));
      } else {
        if (req.url === newOrderPath) fixture.newOrders.push(JSON.parse(Buffer.from((JSON.parse(body.toString()) as { payload: string }).payload, "base64url").toString()) as Record<string, unknown>);
        const upstream = await forward(req.method ?? "GET", req.url ?? "/", headers, body);
        for (const [name, value] of Object.entries(upstream.headers)) if (value !== undefined && name !== "transfer-encoding" && name !== "connection") res.setHeader(name, value);
        res.writeHead(upstream.status).end(upstream.body);
      }
    })().catch((err: unknown) => res.writeHead(502).end(String(err)));
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  Object.assign(fixture, { directoryUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir` });
  return fixture;
}
