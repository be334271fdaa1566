import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import { SiteTable } from "../config/site-table.js";
import { checkRequest } from "./request-guard.js";

const config = parseConfig(
  "sites:\n  - hosts: [jupyter.example.com, nb.example.com]\n    upstream: http://127.0.0.1:8888\n  - host: localhost\n    upstream: http://127.0.0.1:9999\n    tls: internal\n",
  "/tmp/gateway.yaml",
  "gateway.yaml",
);
const sites = new SiteTable(config.sites);

function request(method: string, headers: Record<string, string>, remoteAddress = "198.51.100.7"): IncomingMessage {
  return { method, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

it("decides requests and upgrades by Host and Origin", () => {
  const ws = { upgrade: "websocket", connection: "Upgrade" };
  const cases: Array<[string, string, Record<string, string>, boolean, number | string]> = [
    ["same-site GET", "GET", { host: "jupyter.example.com" }, false, "allow"],
    ["Host with port and case", "GET", { host: "Jupyter.Example.com:8443" }, false, "allow"],
    ["second name of a site", "POST", { host: "nb.example.com", origin: "https://nb.example.com" }, false, "allow"],
    ["no Host", "GET", {}, false, 400],
    ["unknown Host", "GET", { host: "evil.example.com" }, false, 421],
    ["cross-site POST", "POST", { host: "jupyter.example.com", origin: "https://evil.example.com" }, false, 403],
    ["POST from the other name of the same site is cross-origin", "POST", { host: "jupyter.example.com", origin: "https://nb.example.com" }, false, 403],
    ["http origin for an https site", "PUT", { host: "jupyter.example.com", origin: "http://jupyter.example.com" }, false, 403],
    ["Origin: null", "DELETE", { host: "jupyter.example.com", origin: "null" }, false, 403],
    ["cross-site GET passes to the notebook, which checks again", "GET", { host: "jupyter.example.com", origin: "https://evil.example.com" }, false, "allow"],
    ["POST without Origin (curl)", "POST", { host: "jupyter.example.com" }, false, "allow"],
    ["port must match", "POST", { host: "jupyter.example.com:8443", origin: "https://jupyter.example.com" }, false, 403],
    ["default port is the same origin", "POST", { host: "jupyter.example.com:443", origin: "https://jupyter.example.com" }, false, "allow"],
    ["same-site upgrade", "GET", { host: "localhost:8443", origin: "https://localhost:8443", ...ws }, true, "allow"],
    ["cross-site upgrade", "GET", { host: "localhost:8443", origin: "https://evil.example.com", ...ws }, true, 403],
    ["upgrade to something else", "GET", { host: "localhost:8443", upgrade: "h2c" }, true, 400],
    ["upgrade with POST", "POST", { host: "localhost:8443", origin: "https://localhost:8443", ...ws }, true, 400],
    ["upgrade for an unknown host", "GET", { host: "evil.example.com", ...ws }, true, 421],
  ];
  for (const [name, method, headers, isUpgrade, expected] of cases) {
    const verdict = checkRequest(request(method, headers), sites, isUpgrade);
    assert.equal(verdict.kind === "allow" ? "allow" : verdict.status, expected, name);
  }
});

it("allows with the site and its public origin", () => {
  const verdict = checkRequest(request("GET", { host: "localhost:8443" }), sites, false);
  assert.equal(verdict.kind, "allow");
  if (verdict.kind === "allow") {
    assert.equal(verdict.publicOrigin, "https://localhost:8443");
    assert.equal(verdict.site.upstream.port, "9999");
  }
});

it("applies allow and deny lists, IPv4 and IPv6, deny first", () => {
  const restricted = new SiteTable(
    parseConfig(
      "sites:\n  - host: lab.example.com\n    upstream: http://127.0.0.1:8888\n    allow: [203.0.113.0/24, 2001:db8::/32, 198.51.100.7]\n    deny: [203.0.113.66]\n",
      "/tmp/gateway.yaml",
      "gateway.yaml",
    ).sites,
  );
  const cases: Array<[string, number | string]> = [
    ["203.0.113.5", "allow"],
    ["::ffff:203.0.113.5", "allow"],
    ["203.0.113.66", 403],
    ["198.51.100.7", "allow"],
    ["198.51.100.8", 403],
    ["2001:db8::1", "allow"],
    ["2001:db9::1", 403],
  ];
  for (const [address, expected] of cases) {
    const verdict = checkRequest(request("GET", { host: "lab.example.com" }, address), restricted, false);
    assert.equal(verdict.kind === "allow" ? "allow" : verdict.status, expected, address);
  }
});
