import assert from "node:assert/strict";
import { once } from "node:events";
import { request, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import { SiteTable } from "../config/site-table.js";
import { parseDuration } from "../config/duration.js";
import { DEFAULT_TIMEOUTS } from "../config/gateway-config.js";
import { GATEWAY_YAML } from "../config/gateway-yaml-schema.js";
import { silentLogger } from "../platform/logger.js";
import { createHttpListener } from "./http-listener.js";

describe("http listener", () => {
  it("takes the longest timeouts.headers the config admits (Node refuses a headersTimeout above requestTimeout)", () => {
    const headersMs = parseDuration(GATEWAY_YAML.properties.timeouts.properties.headers.maximumDuration) ?? NaN;
    const unused = (): never => {
      throw new Error("not asked for when the listener is made");
    };
    const server = createHttpListener(unused, unused, () => 443, { ...DEFAULT_TIMEOUTS, headersMs }, silentLogger);
    assert.equal(server.headersTimeout, headersMs);
    assert.ok(server.requestTimeout >= headersMs);
  });

  it("redirects an IP-address site to https on its address, IPv6 in brackets", async () => {
    const sites = new SiteTable(parseConfig('sites:\n  - hosts: [203.0.113.7, "2001:db8::7"]\n    upstream: http://127.0.0.1:8888\n', "/tmp/gateway.yaml", "gateway.yaml").sites);
    const unused = (): never => {
      throw new Error("no challenge asked for");
    };
    const server = createHttpListener(unused, () => sites, () => 8443, DEFAULT_TIMEOUTS, silentLogger);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const location = async (host: string): Promise<[number | undefined, string | undefined]> => {
      const req = request({ host: "127.0.0.1", port, path: "/tree?x=1", headers: { host }, agent: false });
      const [res] = (await once(req.end(), "response")) as [IncomingMessage];
      res.resume();
      return [res.statusCode, res.headers.location];
    };
    try {
      assert.deepEqual(await location("203.0.113.7"), [308, "https://203.0.113.7:8443/tree?x=1"]);
      assert.deepEqual(await location("[2001:db8::7]:80"), [308, "https://[2001:db8::7]:8443/tree?x=1"]);
      assert.deepEqual(await location("203.0.113.8"), [404, undefined]);
    } finally {
      server.close();
    }
  });
});
