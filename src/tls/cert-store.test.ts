import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { FileCertStore } from "./cert-store.js";

const dir = mkdtempSync(join(tmpdir(), "cert-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

it("a state file that does not parse is reported with its path and what to do", async () => {
  const store = new FileCertStore(dir);
  await store.init();
  writeFileSync(join(dir, "state", "localhost.json"), "{ torn");
  await assert.rejects(store.loadState("localhost"), (err: Error) => {
    assert.match(err.message, new RegExp(`${join(dir, "state", "localhost.json")}: not valid JSON \\(.*\\); delete it`));
    return true;
  });
});
