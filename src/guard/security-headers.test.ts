import assert from "node:assert/strict";
import { it } from "node:test";
import type { SiteConfig } from "../config/gateway-config.js";
import { applySecurityHeaders } from "./security-headers.js";

const site = (frameAncestors: string[]): SiteConfig => ({ frameAncestors }) as unknown as SiteConfig;

it("sets HSTS, nosniff, Referrer-Policy and forbids foreign framing by default", () => {
  const headers: Record<string, string> = { "content-security-policy": "frame-ancestors 'self'; report-uri /api/security/csp-report" };
  applySecurityHeaders(headers, site([]));
  assert.equal(headers["strict-transport-security"], "max-age=31536000");
  assert.equal(headers["x-content-type-options"], "nosniff");
  assert.equal(headers["referrer-policy"], "same-origin");
  assert.equal(headers["x-frame-options"], "SAMEORIGIN");
  assert.equal(headers["content-security-policy"], "frame-ancestors 'self'; report-uri /api/security/csp-report");
});

it("frame_ancestors replaces the notebook's frame-ancestors and drops X-Frame-Options", () => {
  const headers: Record<string, string> = { "content-security-policy": "frame-ancestors 'self'; report-uri /x", "x-frame-options": "DENY" };
  applySecurityHeaders(headers, site(["https://mywebsite.example.com"]));
  assert.equal(headers["content-security-policy"], "frame-ancestors 'self' https://mywebsite.example.com; report-uri /x");
  assert.equal(headers["x-frame-options"], undefined);
});
