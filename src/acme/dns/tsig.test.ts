import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { TsigAlgorithm } from "../../config/gateway-config.js";
import { decodeResponse, encodeQuery, TYPE } from "./dns-message.js";
import { checkAnswerSignature, readTsigKey, signMessage } from "./tsig.js";

const dir = mkdtempSync(join(tmpdir(), "gateway-tsig-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Two keys as `tsig-keygen -a hmac-sha512 k1; tsig-keygen k2` print them. */
const TWO_KEYS = `key "k1" {
\talgorithm hmac-sha512;
\tsecret "aLJnhvuA+MatLDxqscylnM2rECJNCvOLyyFOqitT/PJtrj6qaCI++EQBD8fDlt4uQ7b5ZaD6zhPrg5n7TBbcqQ==";
};
key "k2" {
\talgorithm hmac-sha256;
\tsecret "OdHKBq20S6FNIgCLTJorZNHHEuqMRnYyDn2uYDv44wc=";
};
`;
const ONE_KEY = TWO_KEYS.split("};\n")[1] + "};\n";

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

describe("readTsigKey: tsig-keygen's key statements or a bare base64 secret", () => {
  const cases: Array<{ what: string; text: string; keyName: string | null; algorithm: TsigAlgorithm | null; expect: { name: string; algorithm: string; secretBytes: number } | RegExp }> = [
    { what: "one key statement, nothing else set", text: ONE_KEY, keyName: null, algorithm: null, expect: { name: "k2", algorithm: "hmac-sha256", secretBytes: 32 } },
    { what: "several keys, key_name picks one, its algorithm is the file's", text: TWO_KEYS, keyName: "K1.", algorithm: null, expect: { name: "k1", algorithm: "hmac-sha512", secretBytes: 64 } },
    { what: "several keys and no key_name", text: TWO_KEYS, keyName: null, algorithm: null, expect: /holds several keys \(k1, k2\); set acme\.dns\.key_name/ },
    { what: "a key_name the file lacks", text: TWO_KEYS, keyName: "k3", algorithm: null, expect: /has no key named k3 \(it has k1, k2\); fix acme\.dns\.key_name/ },
    { what: "a written algorithm that contradicts the file", text: ONE_KEY, keyName: null, algorithm: "hmac-sha512", expect: /acme\.dns\.algorithm is hmac-sha512, but key k2 in \S+ is hmac-sha256; remove acme\.dns\.algorithm/ },
    { what: "an hmac-md5 key", text: ONE_KEY.replace("hmac-sha256", "hmac-md5"), keyName: null, algorithm: null, expect: /uses hmac-md5, which the gateway does not sign with .*tsig-keygen -a hmac-sha256 k2/ },
    { what: "a bare secret with key_name, default algorithm", text: "OdHKBq20S6FNIgCLTJorZNHHEuqMRnYyDn2uYDv44wc=\n", keyName: "acme", algorithm: null, expect: { name: "acme", algorithm: "hmac-sha256", secretBytes: 32 } },
    { what: "a bare secret with key_name and algorithm", text: "OdHKBq20S6FNIgCLTJorZNHHEuqMRnYyDn2uYDv44wc=", keyName: "acme", algorithm: "hmac-sha384", expect: { name: "acme", algorithm: "hmac-sha384", secretBytes: 32 } },
    { what: "a bare secret without key_name", text: "OdHKBq20S6FNIgCLTJorZNHHEuqMRnYyDn2uYDv44wc=", keyName: null, algorithm: null, expect: /holds a bare secret, so the key's name is unknown; set acme\.dns\.key_name/ },
    { what: "something else", text: "password=hunter2\n", keyName: "acme", algorithm: null, expect: /holds neither a BIND key statement .* nor a base64 secret/ },
  ];
  cases.forEach(({ what, text, keyName, algorithm, expect }, i) => {
    it(what, async () => {
      const path = file(`key-${i}`, text);
      if (expect instanceof RegExp) {
        await assert.rejects(readTsigKey(path, keyName, algorithm), (err: Error) => {
          assert.match(err.message, expect);
          assert.doesNotMatch(err.message, /aLJnhvuA|OdHKBq20/, "the secret never appears in a message");
          return true;
        });
        return;
      }
      const key = await readTsigKey(path, keyName, algorithm);
      assert.deepEqual({ name: key.name, algorithm: key.algorithm, secretBytes: key.secret.length }, expect);
    });
  });

  it("a missing file says so and what to do", async () => {
    await assert.rejects(readTsigKey(join(dir, "absent.key"), null, null), /acme\.dns\.key_file \S+absent\.key: cannot read it \(ENOENT\)/);
  });
});

describe("checkAnswerSignature", () => {
  it("a TSIG record cut short in its fields is a plain malformed-answer Error, not a RangeError", async () => {
    const key = await readTsigKey(file("check.key", ONE_KEY), null, null);
    const { signed, mac } = signMessage(encodeQuery(7, "example.com", TYPE.SOA), key, new Date("2026-06-01T12:00:00Z"));
    const response = decodeResponse(signed);
    const tsig = response.additional.at(-1);
    assert.equal(tsig?.type, TYPE.TSIG);
    for (const keep of [key.name.length + 2 + 12, tsig.rdata.length - 4]) {
      const cut = { ...response, additional: [{ ...tsig, rdata: tsig.rdata.subarray(0, keep) }] };
      assert.throws(() => checkAnswerSignature(signed, cut, key, mac), (err: Error) => {
        assert.equal(err.constructor, Error);
        assert.match(err.message, /^the TSIG record ends inside its fields/);
        return true;
      });
    }
  });
});
