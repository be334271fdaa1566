import assert from "node:assert/strict";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import { request } from "node:https";
import type { AddressInfo } from "node:net";
import { rmSync } from "node:fs";
import { describe, it } from "node:test";
import { createTestBed } from "../../test/support/test-ca.js";
import { DEFAULT_TIMEOUTS } from "../config/gateway-config.js";
import { parseConfig } from "../config/load-config.js";
import { SiteTable } from "../config/site-table.js";
import type { LoginGate } from "../guard/login-throttle.js";
import type { Logger } from "../platform/logger.js";
import type { NotebookProxy } from "../proxy/notebook-proxy.js";
import { SniContexts } from "../tls/sni-context.js";
import { createHttpsListener } from "./https-listener.js";

const SITE = "jupyter.example.test";

describe("https listener", () => {
  it("answers 503 when a worker's login check fails, instead of an unhandled rejection that ends the process", async () => {
    const { dir, ca, leaf } = createTestBed("gateway-https-listener-", [SITE]);
    const sni = new SniContexts();
    sni.set([SITE], leaf, true);
    const sites = new SiteTable(parseConfig(`sites:\n  - host: ${SITE}\n    upstream: http://127.0.0.1:8888\n`, "/tmp/gateway.yaml", "gateway.yaml").sites);
    const errors: string[] = [];
    const logger: Logger = { info: () => undefined, warn: () => undefined, error: (event) => errors.push(event) };
    // The unit's edges: the primary's answer fails; the notebook must not be reached.
    const logins: LoginGate = { check: () => Promise.reject(new Error("the IPC channel closed")), settle: () => undefined, record: () => undefined };
    const proxy = { web: () => assert.fail("a login attempt reached the notebook unchecked") } as unknown as NotebookProxy;
    const server = createHttpsListener({ sni, sites: () => sites, proxy, logins, clientCerts: { requested: false, revokedSerials: () => new Set() }, upgraded: new Set(), timeouts: DEFAULT_TIMEOUTS, http2: true, onResponse: () => undefined, logger });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      const req = request({ host: "127.0.0.1", port, servername: SITE, ca: ca.certPem, method: "POST", path: "/login", headers: { host: SITE, "content-type": "application/x-www-form-urlencoded" }, agent: false });
      const [res] = (await once(req.end("password=x"), "response")) as [IncomingMessage];
      res.resume();
      assert.equal(res.statusCode, 503);
      assert.equal(res.headers["retry-after"], "5");
      assert.deepEqual(errors, ["guard.login_check_failed"]);
    } finally {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
