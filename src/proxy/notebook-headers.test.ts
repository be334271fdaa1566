import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { it } from "node:test";
import { presentToBrowser, presentToNotebook } from "./notebook-headers.js";

const p = { publicOrigin: "https://jupyter.example.com", upstream: new URL("http://127.0.0.1:8888"), clientAddress: "198.51.100.7" };

it("presents a same-site request as one to the notebook's loopback address", () => {
  const headers: IncomingHttpHeaders = {
    host: "jupyter.example.com",
    origin: "https://jupyter.example.com",
    referer: "https://jupyter.example.com/notebooks/a.ipynb?x=1",
    "x-forwarded-for": "203.0.113.1",
    "x-forwarded-host": "evil.example.com",
    "x-real-ip": "203.0.113.1",
    forwarded: "for=203.0.113.1",
    cookie: "a=b",
  };
  presentToNotebook(headers, p);
  assert.deepEqual(headers, {
    host: "127.0.0.1:8888",
    origin: "http://127.0.0.1:8888",
    referer: "http://127.0.0.1:8888/notebooks/a.ipynb?x=1",
    "x-forwarded-for": "198.51.100.7",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "jupyter.example.com",
    cookie: "a=b",
  });
});

it("leaves a foreign Origin and Referer as they are, so the notebook refuses them too", () => {
  const headers: IncomingHttpHeaders = { host: "jupyter.example.com", origin: "https://evil.example.com", referer: "https://evil.example.com/x" };
  presentToNotebook(headers, p);
  assert.equal(headers.origin, "https://evil.example.com");
  assert.equal(headers.referer, "https://evil.example.com/x");
});

it("points redirects to the notebook back at the site and marks cookies Secure", () => {
  const headers: IncomingHttpHeaders = {
    location: "http://127.0.0.1:8888/tree?x=1#top",
    "set-cookie": ["_xsrf=abc; Path=/", "username-127-0-0-1-8888=x; HttpOnly; Path=/", "s=1; Secure; Path=/"],
  };
  presentToBrowser(headers, p);
  assert.equal(headers.location, "https://jupyter.example.com/tree?x=1#top");
  assert.deepEqual(headers["set-cookie"], ["_xsrf=abc; Path=/; Secure", "username-127-0-0-1-8888=x; HttpOnly; Path=/; Secure", "s=1; Secure; Path=/"]);
});

it("keeps relative and foreign redirects", () => {
  for (const location of ["/login?next=%2Ftree", "https://accounts.example.org/"]) {
    const headers: IncomingHttpHeaders = { location };
    presentToBrowser(headers, p);
    assert.equal(headers.location, location);
  }
});
