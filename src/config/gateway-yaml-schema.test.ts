import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { SCHEMA_FILE, schemaProblems } from "../../test/support/gateway-schema.js";
import { gatewayJsonSchema } from "./gateway-yaml-schema.js";

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
    ];
    for (const [text, valid] of cases) assert.equal(schemaProblems(text).length === 0, valid, text);
  });
});
