import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { Document, LineCounter, parseDocument } from "yaml";
import { SCHEMA_FILE, schemaProblems } from "../../test/support/gateway-schema.js";
import { ConfigErrors } from "./config-error.js";
import { parseDuration } from "./duration.js";
import { GATEWAY_YAML, gatewayJsonSchema, type SchemaNode } from "./gateway-yaml-schema.js";
import { parseConfig } from "./load-config.js";

const TESTDATA = fileURLToPath(new URL("../../../src/config/testdata/", import.meta.url));
const SHIPPED = fileURLToPath(new URL("../../../gateway.yaml", import.meta.url));

describe("gateway.yaml JSON Schema", () => {
  it("the committed gateway.schema.json is what `gateway schema` prints", () => {
    assert.equal(readFileSync(SCHEMA_FILE, "utf8"), `${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`, "regenerate it: npm run build && node dist/src/main.js schema > src/config/gateway.schema.json");
  });

  it("the shipped gateway.yaml points editors at the schema and passes it", () => {
    const text = readFileSync(SHIPPED, "utf8");
    const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text);
    assert.ok(modeline?.[1], "gateway.yaml has no yaml-language-server $schema line");
    assert.equal(resolve(dirname(SHIPPED), modeline[1]), SCHEMA_FILE);
    assert.ok(existsSync(SCHEMA_FILE));
    assert.deepEqual(schemaProblems(text), []);
  });

  // Every golden file: valid ones pass; bad ones are flagged, except where the file says
  // `# schema: accepts; <why>` (a rule only the loader can check), and then it must really pass.
  for (const name of readdirSync(TESTDATA).filter((f) => f.endsWith(".yaml"))) {
    it(`golden ${name}`, () => {
      const text = readFileSync(join(TESTDATA, name), "utf8");
      const problems = schemaProblems(text);
      if (text.includes("# expect: valid") || text.includes("# schema: accepts;")) assert.deepEqual(problems, []);
      else assert.ok(problems.length > 0, `the schema accepts ${name}, which the loader rejects`);
    });
  }

  it("flags what editors should flag, and passes the documented forms", () => {
    const site = "sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n";
    const cases: Array<[string, boolean]> = [
      [site, true],
      [`${site}    tls: { cert: /etc/letsencrypt/live/x/fullchain.pem, key: /etc/letsencrypt/live/x/privkey.pem }\n`, true],
      [`${site}    tls: { cert: a.pem }\n`, false],
      [`listen: { https: 443, http: false }\nacme: { challenge: tls-alpn-01, directory: "https://127.0.0.1:14000/dir" }\n${site}`, true],
      [`logs: { format: logfmt, access: /var/log/gateway/access.log }\n${site}`, true],
      [`logs: { format: xml }\n${site}`, false],
      [`${site}    login_guard: { max_failures_per_address: 0 }\n`, false],
      [`${site}    login_guard: { window: 1h, paths: [/login, /hub/login] }\n`, true],
      [`${site}    allow: [203.0.113.0/24, "2001:db8::/32"]\n    client_certificates: required\n`, true],
      [`${site}    client_certificates: yes\n`, false],
      [`${site}    tunnel: { port: 22 }\n`, false],
      ["sites:\n  - hosts: [LocalHost]\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", true],
      ["acme: { profile: shortlived }\nsites:\n  - hosts: [203.0.113.7, \"2001:db8::7\"]\n    upstream: http://127.0.0.1:8888\n    acme_profile: tlsserver\n", true],
      [`acme: { profile: "short lived" }\n${site}`, false],
      ["sites:\n  - host: localhost\n    upstream: http://127.0.0.1:8888\n", false],
      [`acme:\n  eab: { kid: k, hmac_key_file: /etc/gateway/eab.key }\n  fallback: { directory: "https://acme.zerossl.com/v2/DV90", eab: { kid: z, hmac_key_file: z.key } }\n${site}`, true],
      [`acme:\n  fallback:\n    - { directory: "https://acme.zerossl.com/v2/DV90", email: you@example.com }\n    - directory: "https://dv.acme-v02.api.pki.goog/directory"\n${site}`, true],
      [`acme:\n  fallback: { eab: { kid: z, hmac_key_file: z.key } }\n${site}`, false],
      [`acme:\n  fallback: []\n${site}`, false],
      [`acme:\n  eab: { kid: k }\n${site}`, false],
    ];
    for (const [text, valid] of cases) assert.equal(schemaProblems(text).length === 0, valid, text);
  });
});

/** A key path in gateway.yaml: mapping keys and list indexes. */
type KeyPath = ReadonlyArray<string | number>;

/** Every schema node with its key path, through properties, list items and alternatives (anyOf, oneOf, allOf). */
function schemaNodes(node: SchemaNode, path: KeyPath = []): Array<{ path: KeyPath; node: SchemaNode }> {
  return [
    { path, node },
    ...Object.entries(node.properties ?? {}).flatMap(([key, child]) => schemaNodes(child, [...path, key])),
    ...(node.items ? schemaNodes(node.items, [...path, 0]) : []),
    ...[...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])].flatMap((child) => schemaNodes(child, path)),
  ];
}

/** A value to write at a path, and whether it is inside the range. */
interface RangeCase {
  readonly value: number | string;
  readonly inside: boolean;
}

const UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The bounds and one past them; for durations in every unit that can say them, for integers a fraction too. */
function rangeCases(node: SchemaNode): RangeCase[] {
  if (node.minimum !== undefined && node.maximum !== undefined) {
    const { minimum, maximum } = node;
    return [
      { value: minimum, inside: true },
      { value: maximum, inside: true },
      { value: minimum - 1, inside: false },
      { value: maximum + 1, inside: false },
      { value: minimum + 0.5, inside: false },
    ];
  }
  const minimumMs = parseDuration(node.minimumDuration ?? "") ?? NaN;
  const maximumMs = parseDuration(node.maximumDuration ?? "") ?? NaN;
  return [
    ...Object.entries(UNITS_MS).flatMap(([unit, ms]) => {
      const [low, high] = [Math.ceil(minimumMs / ms), Math.floor(maximumMs / ms)];
      const inRange = low <= high ? [{ value: `${low}${unit}`, inside: true }, { value: `${high}${unit}`, inside: true }] : [];
      return [...inRange, ...(low > 0 ? [{ value: `${low - 1}${unit}`, inside: false }] : []), { value: `${high + 1}${unit}`, inside: false }];
    }),
    { value: "1000000000d", inside: false },
    { value: String(minimumMs / 1000), inside: false },
  ];
}

/**
 * Valid as it is, and with any one ranged value at either bound: a tunnel, so that its keys have
 * somewhere to go, and idle timeouts that leave room for every client_idle and upstream_idle
 * (client_idle must be the longer of the two).
 */
const BASE = {
  timeouts: { client_idle: "1h", upstream_idle: "1s" },
  sites: [{ host: "jupyter.example.com", upstream: "http://127.0.0.1:8888", tunnel: { ssh: "me@workstation.example.edu" } }],
};

/** acme.dns's files, which the loader checks: a key file only its owner reads, an executable hook. */
const DNS_FILES = mkdtempSync(join(tmpdir(), "gateway-schema-dns-"));
const DNS_KEY = join(DNS_FILES, "tsig.key");
const DNS_HOOK = join(DNS_FILES, "hook.sh");
writeFileSync(DNS_KEY, "c2VjcmV0\n", { mode: 0o600 });
writeFileSync(DNS_HOOK, "#!/bin/sh\n", { mode: 0o700 });
after(() => rmSync(DNS_FILES, { recursive: true, force: true }));

/** BASE, and for a key of acme.dns, dns-01 with the update keys or the hook keys that key belongs with. */
function baseFor(path: KeyPath): object {
  if (path[0] !== "acme" || path[1] !== "dns") return BASE;
  const dns = path[2] === "hook_timeout" ? { auth_hook: DNS_HOOK } : { server: "192.0.2.53", key_file: DNS_KEY };
  return { ...BASE, acme: { challenge: "dns-01", dns } };
}

function withValue(path: KeyPath, value: unknown): string {
  const doc = new Document(structuredClone(baseFor(path)));
  doc.setIn(path, value);
  return doc.toString();
}

function loaderProblems(text: string): string[] {
  try {
    parseConfig(text, "/etc/gateway/gateway.yaml", "gateway.yaml");
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigErrors, String(err));
    return [...err.problems];
  }
}

/** "gateway.yaml:L:C: sites[0].login_guard.window": the start of the loader's problem at the value. */
function problemPrefix(text: string, path: KeyPath): string {
  const lines = new LineCounter();
  const node = parseDocument(text, { lineCounter: lines }).getIn(path, true) as { range: [number] };
  const { line, col } = lines.linePos(node.range[0]);
  const dotted = path.map((key) => (typeof key === "number" ? `[${key}]` : `.${key}`)).join("").slice(1);
  return `gateway.yaml:${line}:${col}: ${dotted} `;
}

describe("the JSON Schema and the loader agree on every range", () => {
  const ranged = schemaNodes(GATEWAY_YAML).filter(({ node }) => node.type === "integer" || node.minimumDuration !== undefined || node.maximumDuration !== undefined);

  it("every integer and every duration in the schema has both bounds", () => {
    assert.ok(ranged.length > 0);
    for (const { path, node } of ranged) {
      const bounded = node.type === "integer" ? node.minimum !== undefined && node.maximum !== undefined : parseDuration(node.minimumDuration ?? "") !== undefined && parseDuration(node.maximumDuration ?? "") !== undefined;
      assert.ok(bounded, `${path.join(".")} has no complete range`);
    }
  });

  it("the base config is valid to both", () => {
    const text = withValue(["sites", 0, "host"], "jupyter.example.com");
    assert.deepEqual(loaderProblems(text), []);
    assert.deepEqual(schemaProblems(text), []);
  });

  for (const { path, node } of ranged) {
    const name = path.join(".");
    const range = node.type === "integer" ? `from ${node.minimum} to ${node.maximum}` : `from ${node.minimumDuration} to ${node.maximumDuration}`;
    it(`${name}: ${range}, at and just past each bound`, () => {
      for (const { value, inside } of rangeCases(node)) {
        const text = withValue(path, value);
        const loader = loaderProblems(text);
        const schema = schemaProblems(text);
        if (inside) {
          assert.deepEqual(loader, [], `the loader refuses ${name}: ${value}`);
          assert.deepEqual(schema, [], `the schema refuses ${name}: ${value}`);
          continue;
        }
        assert.equal(loader.length, 1, `the loader should refuse ${name}: ${value} once: ${JSON.stringify(loader)}`);
        const prefix = problemPrefix(text, path);
        assert.ok(loader[0]?.startsWith(prefix) && loader[0].includes(range) && loader[0].includes("; write "), `${name}: ${value}: ${loader[0]} should start with "${prefix}", name the range (${range}) and what to write`);
        const pointer = `/${path.join("/")}`;
        assert.ok(schema.length > 0, `the schema accepts ${name}: ${value}`);
        for (const problem of schema) assert.ok(problem.startsWith(pointer), `${name}: ${value}: schema problem elsewhere: ${problem}`);
      }
    });
  }

  // Numbers inside strings, whose bounds live in patterns rather than minimum/maximum.
  const inStrings: Array<[KeyPath, string, boolean]> = [
    [["admin"], "127.0.0.1:0", true],
    [["admin"], "[::1]:80", true],
    [["admin"], "[::1]:65535", true],
    [["admin"], "127.0.0.1:65536", false],
    [["admin"], "127.0.0.256:2019", false],
    [["sites", 0, "tunnel", "remote"], "localhost:1", true],
    [["sites", 0, "tunnel", "remote"], "[::1]:65535", true],
    [["sites", 0, "tunnel", "remote"], "localhost:0", false],
    [["sites", 0, "tunnel", "remote"], "localhost:65536", false],
    [["sites", 0, "upstream"], "http://127.0.0.1:1", true],
    [["sites", 0, "upstream"], "http://127.0.0.1:65535/", true],
    [["sites", 0, "upstream"], "http://127.0.0.1:0", false],
    [["sites", 0, "upstream"], "http://127.0.0.1:65536", false],
    [["sites", 0, "allow"], "0.0.0.0/0", true],
    [["sites", 0, "allow"], "10.0.0.0/32", true],
    [["sites", 0, "allow"], "10.0.0.0/33", false],
    [["sites", 0, "allow"], "::/128", true],
    [["sites", 0, "allow"], "::/129", false],
    [["sites", 0, "allow"], "10.0.0.0/08", false],
    [["sites", 0, "allow"], "10.0.0.0/8/8", false],
  ];
  it("numbers inside strings: ports and prefix lengths at and past their bounds", () => {
    for (const [path, value, inside] of inStrings) {
      const text = withValue(path, path.at(-1) === "allow" ? [value] : value);
      const verdicts = [loaderProblems(text).length === 0, schemaProblems(text).length === 0];
      assert.deepEqual(verdicts, [inside, inside], `${path.join(".")}: ${value} (loader, schema)`);
    }
  });
});
