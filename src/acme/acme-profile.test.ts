import assert from "node:assert/strict";
import { it } from "node:test";
import { GatewayError } from "../platform/gateway-error.js";
import { chooseProfile, offeredProfiles } from "./acme-profile.js";

const LETSENCRYPT = { newOrder: "https://ca/new-order", meta: { profiles: { classic: "…", shortlived: "…", tlsserver: "…" } } };
const DIR = "https://ca/dir";
const ip = [{ type: "ip", value: "203.0.113.7" }] as const;
const dns = [{ type: "dns", value: "jupyter.example.com" }] as const;

it("reads the profiles a directory offers; a directory without meta.profiles offers none", () => {
  assert.deepEqual(offeredProfiles(LETSENCRYPT), ["classic", "shortlived", "tlsserver"]);
  assert.deepEqual(offeredProfiles({ newOrder: "x", meta: { termsOfService: "t" } }), []);
  assert.deepEqual(offeredProfiles({ newOrder: "x" }), []);
});

it("asks for the configured profile, or shortlived for an IP address when the CA offers it, else none", () => {
  const offered = offeredProfiles(LETSENCRYPT);
  const cases: Array<[string | null, typeof ip | typeof dns, readonly string[], string | undefined]> = [
    ["tlsserver", dns, offered, "tlsserver"],
    ["classic", ip, offered, "classic"],
    [null, ip, offered, "shortlived"],
    [null, dns, offered, undefined],
    [null, ip, [], undefined],
    [null, ip, ["classic"], undefined],
  ];
  for (const [configured, identifiers, offers, expected] of cases) assert.equal(chooseProfile(configured, identifiers, offers, DIR), expected, `${configured} ${identifiers[0].type} [${offers.join()}]`);
});

it("a profile the CA does not offer fails, naming what it offers", () => {
  assert.throws(() => chooseProfile("tlsserver", dns, ["classic", "shortlived"], DIR), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, "acme.profile_not_offered");
    assert.equal(err.message, 'the CA at https://ca/dir does not offer the ACME profile "tlsserver" (it offers classic, shortlived); set acme.profile (or the site\'s acme_profile) to one of those, or remove it for the CA\'s default');
    return true;
  });
  assert.throws(() => chooseProfile("shortlived", ip, [], DIR), /\(it offers no profiles\); remove acme\.profile \(and any site's acme_profile\) to order its default$/);
});
