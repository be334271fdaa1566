import assert from "node:assert/strict";
import { it } from "node:test";
import { formatCombined, type RequestAsSent } from "./access-log.js";

const at = new Date("2026-12-02T18:00:00Z");
const line = (r: Partial<RequestAsSent>): string => formatCombined({ client: "198.51.100.7", method: "GET", target: "/", httpVersion: "1.1", referer: undefined, userAgent: undefined, ...r }, 200, 5, at);

it("redacts secrets in the target and the Referer, however they are spelled", () => {
  const cases: Array<[string, string]> = [
    ["/lab?token=s3cret&x=1", "/lab?token=REDACTED&x=1"],
    ["/api/kernels?x=1&TOKEN=s3cret", "/api/kernels?x=1&TOKEN=REDACTED"],
    ["/x?%74oken=s3cret", "/x?%74oken=REDACTED"],
    ["/login?next=%2Flab%3Ftoken%3Ds3cret", "/login?next=REDACTED"],
    ["/login?next=/lab?token=s3cret", "/login?next=REDACTED"],
    ["https://user:s3cret@jupyter.example.com/x", "https://REDACTED@jupyter.example.com/x"],
    ["/files/token=not-a-query.txt?download=1", "/files/token=not-a-query.txt?download=1"],
    ["/x?tokens=1&mytoken=2", "/x?tokens=1&mytoken=2"],
  ];
  for (const [target, logged] of cases) {
    assert.ok(line({ target }).includes(`"GET ${logged} HTTP/1.1"`), `${target}: ${line({ target })}`);
    if (target.startsWith("/")) assert.ok(line({ referer: `https://jupyter.example.com${target}` }).includes(`"https://jupyter.example.com${logged}"`), `Referer ${target}`);
  }
});

it("escapes what could forge or break a line, as nginx does", () => {
  const logged = line({ userAgent: 'a"b\\c\nd\u0085e\u00ffé' });
  assert.ok(logged.endsWith('"a\\x22b\\x5cc\\x0ad\\x85e\\xff\\xe9"'), logged);
  assert.equal(logged.split("\n").length, 1);
});
