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

/** What Node's parser hands over: lower-case headers, and the raw lines in order (`raw` overrides them). */
function request(method: string, headers: Record<string, string>, remoteAddress = "198.51.100.7", options: { url?: string; version?: string; raw?: string[] } = {}): IncomingMessage {
  const version = options.version ?? "1.1";
  const [major, minor] = version.split(".").map(Number);
  const rawHeaders = options.raw ?? Object.entries(headers).flat();
  return { method, url: options.url ?? "/", httpVersion: version, httpVersionMajor: major, httpVersionMinor: minor, headers, rawHeaders, socket: { remoteAddress } } as unknown as IncomingMessage;
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

it("an IP-address site is found by its address in Host (IPv6 in brackets, with or without a port), and Origin is checked against it", () => {
  const ipSites = new SiteTable(parseConfig('sites:\n  - hosts: [203.0.113.7, "2001:DB8:0::7"]\n    upstream: http://127.0.0.1:8888\n', "/tmp/gateway.yaml", "gateway.yaml").sites);
  const cases: Array<[string, Record<string, string>, number | string]> = [
    ["IPv4 Host", { host: "203.0.113.7" }, "allow"],
    ["IPv4 Host with port, same-site Origin", { host: "203.0.113.7:8443", origin: "https://203.0.113.7:8443" }, "allow"],
    ["IPv6 Host with port, same-site Origin", { host: "[2001:db8::7]:8443", origin: "https://[2001:db8::7]:8443" }, "allow"],
    ["IPv6 Host without port", { host: "[2001:db8::7]" }, "allow"],
    ["the site's other address is another origin", { host: "[2001:db8::7]", origin: "https://203.0.113.7" }, 403],
    ["cross-site Origin", { host: "203.0.113.7", origin: "https://evil.example.com" }, 403],
    ["another address", { host: "203.0.113.8" }, 421],
    ["an IPv6 address without brackets is a malformed Host", { host: "2001:db8::7" }, 400],
  ];
  for (const [name, headers, expected] of cases) {
    const verdict = checkRequest(request("POST", headers), ipSites, false);
    assert.equal(verdict.kind === "allow" ? "allow" : verdict.status, expected, name);
  }
});

it("refuses what RFC 9112 says a server must refuse and Node's parser lets through, before the Host is read", () => {
  const host = { host: "jupyter.example.com" };
  const cases: Array<[string, IncomingMessage, number | string]> = [
    ["HTTP/1.1", request("GET", host), "allow"],
    ["HTTP/1.0 without Transfer-Encoding", request("POST", { ...host, "content-length": "3" }, undefined, { version: "1.0" }), "allow"],
    ["HTTP/2.0 request line", request("GET", host, undefined, { version: "2.0" }), 505],
    ["HTTP/0.9", request("GET", {}, undefined, { version: "0.9" }), 505],
    ["two Host lines, same value", request("GET", host, undefined, { raw: ["Host", "jupyter.example.com", "host", "jupyter.example.com"] }), 400],
    ["two Host lines, different values", request("GET", host, undefined, { raw: ["Host", "jupyter.example.com", "Host", "evil.example.com"] }), 400],
    ["Host with userinfo", request("GET", { host: "user@jupyter.example.com" }), 400],
    ["Host with a path", request("GET", { host: "jupyter.example.com/x" }), 400],
    ["Transfer-Encoding on HTTP/1.0", request("POST", { ...host, "transfer-encoding": "chunked" }, undefined, { version: "1.0" }), 400],
    ["Transfer-Encoding other than chunked", request("POST", { ...host, "transfer-encoding": "identity, chunked" }), 501],
    ["Transfer-Encoding: Chunked (case-insensitive)", request("POST", { ...host, "transfer-encoding": "Chunked" }), "allow"],
    [`${100} header fields`, request("GET", host, undefined, { raw: ["Host", "jupyter.example.com", ...Array.from({ length: 99 }, (_, i) => [`x-${i}`, "v"]).flat()] }), "allow"],
    [`${101} header fields`, request("GET", host, undefined, { raw: ["Host", "jupyter.example.com", ...Array.from({ length: 100 }, (_, i) => [`x-${i}`, "v"]).flat()] }), 431],
    ["asterisk-form", request("OPTIONS", host, undefined, { url: "*" }), 400],
    ["authority-form", request("GET", host, undefined, { url: "jupyter.example.com:443" }), 400],
    ["absolute-form naming another site, whatever Host says", request("GET", host, undefined, { url: "http://evil.example/abs" }), 421],
    ["absolute-form naming this site", request("GET", { host: "evil.example" }, undefined, { url: "https://jupyter.example.com/abs?q=1" }), "allow"],
    ["absolute-form with userinfo", request("GET", host, undefined, { url: "https://u:p@jupyter.example.com/" }), 400],
  ];
  for (const [name, req, expected] of cases) {
    const verdict = checkRequest(req, sites, false);
    assert.equal(verdict.kind === "allow" ? "allow" : verdict.status, expected, name);
  }
});

it("rewrites an absolute-form target to origin-form, with its authority as Host", () => {
  for (const [target, path] of [["https://Jupyter.example.com:8443/lab/tree?x=1", "/lab/tree?x=1"], ["http://jupyter.example.com", "/"], ["https://jupyter.example.com?x", "/?x"]]) {
    const req = request("GET", { host: "other" }, undefined, { url: target });
    assert.equal(checkRequest(req, sites, false).kind, "allow", target);
    assert.equal(req.url, path, target);
    assert.match(req.headers.host ?? "", /^jupyter\.example\.com/i, target);
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
