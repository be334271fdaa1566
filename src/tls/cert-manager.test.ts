import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import type { SiteConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import type { CertificateBundle } from "./certificate-bundle.js";
import type { Logger } from "../platform/logger.js";
import { CertManager } from "./cert-manager.js";
import { FileCertStore } from "./cert-store.js";
import { LocalCaIssuer } from "./local-ca-issuer.js";

const DAY = 24 * 3600 * 1000;
const dir = mkdtempSync(join(tmpdir(), "cert-manager-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A clock the test moves by hand; sleep waits for abort only, so no timer fires on its own. */
class FakeClock implements Clock {
  constructor(public current: Date) {}
  now(): Date {
    return this.current;
  }
  sleep(_ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(new Error("aborted"))));
  }
}

const events: Array<{ event: string; fields: object }> = [];
const logger: Logger = {
  info: (event, fields = {}) => events.push({ event, fields }),
  warn: (event, fields = {}) => events.push({ event, fields }),
  error: (event, fields = {}) => events.push({ event, fields }),
};

function manager(yaml: string, storage: string, clock: Clock, onCertificate: (site: SiteConfig, bundle: CertificateBundle) => void = () => undefined): CertManager {
  const config = parseConfig(yaml, join(dir, "gateway.yaml"), "gateway.yaml");
  const store = new FileCertStore(storage);
  const issuer = new LocalCaIssuer(store, clock, logger);
  return new CertManager(config.sites, store, { internal: issuer, acme: issuer }, onCertificate, clock, logger);
}

it("tls: internal issues a leaf from a private CA, keeps it across restarts, renews it when due", async () => {
  const storage = join(dir, "internal");
  const clock = new FakeClock(new Date());
  const yaml = "sites:\n  - hosts: [localhost, notebook.lan]\n    upstream: http://127.0.0.1:8888\n    tls: internal\n";
  const first = manager(yaml, storage, clock);
  await first.start();
  const issued = (await first.status())[0]?.bundle;
  assert.ok(issued);
  assert.deepEqual(issued.names, ["localhost", "notebook.lan", "127.0.0.1", "0:0:0:0:0:0:0:1"]);
  assert.match(issued.issuer, /notebook-gateway local CA/);
  assert.equal(statSync(storage).mode & 0o777, 0o700);
  assert.equal(statSync(join(storage, "certificates", "localhost.pem")).mode & 0o777, 0o600);
  assert.equal(statSync(join(storage, "ca", "root.key")).mode & 0o777, 0o600);
  first.stop();

  const second = manager(yaml, storage, clock);
  await second.start();
  assert.equal((await second.status())[0]?.bundle?.fingerprint, issued.fingerprint, "a restart reuses the stored certificate");
  assert.equal((await second.renewDue())[0]?.kind, "fresh");

  clock.current = new Date(clock.current.getTime() + 4 * DAY); // past half of the 7-day lifetime
  assert.equal((await second.renewDue())[0]?.kind, "renewed");
  const renewed = (await second.status())[0]?.bundle;
  assert.notEqual(renewed?.fingerprint, issued.fingerprint);
  assert.equal(renewed?.issuer, issued.issuer, "the same CA signs the renewal");
  second.stop();
});

it("a broken replacement of user-managed files keeps the working certificate serving", async () => {
  const storage = join(dir, "files");
  const clock = new FakeClock(new Date());
  // Make a valid pair with the local CA, then hand it to a `tls: {cert, key}` site.
  const issuer = new LocalCaIssuer(new FileCertStore(storage), clock, logger);
  await new FileCertStore(storage).init();
  const good = await issuer.obtain({ hosts: ["jupyter.example.com"], replacing: null });
  const other = await issuer.obtain({ hosts: ["jupyter.example.com"], replacing: null });
  writeFileSync(join(dir, "cert.pem"), good.certPem);
  writeFileSync(join(dir, "key.pem"), good.keyPem, { mode: 0o600 });
  const served: string[] = [];
  const m = manager(`sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n    tls: {cert: cert.pem, key: key.pem}\n`, storage, clock, (_site, bundle) => served.push(bundle.fingerprint));
  await m.start();
  assert.equal((await m.status())[0]?.bundle?.fingerprint, good.fingerprint);

  writeFileSync(join(dir, "key.pem"), other.keyPem); // a key from another issuance: mismatch
  await m.reload();
  assert.deepEqual(served, [good.fingerprint], "the mismatched pair is never served");
  const failure = events.find((e) => e.event === "cert.load_failed");
  assert.match(JSON.stringify(failure?.fields), /the private key does not belong to the certificate/);
  assert.match(JSON.stringify(failure?.fields), new RegExp(`"keeps_serving":"${good.fingerprint}"`));
  m.stop();
});

it("refuses to serve a key file every user can read, saying how to fix it", async () => {
  const storage = join(dir, "readable");
  const clock = new FakeClock(new Date());
  const issuer = new LocalCaIssuer(new FileCertStore(storage), clock, logger);
  await new FileCertStore(storage).init();
  const pair = await issuer.obtain({ hosts: ["jupyter.example.com"], replacing: null });
  writeFileSync(join(dir, "open-cert.pem"), pair.certPem);
  writeFileSync(join(dir, "open-key.pem"), pair.keyPem, { mode: 0o644 });
  chmodSync(join(dir, "open-key.pem"), 0o644);
  const m = manager(`sites:\n  - host: jupyter.example.com\n    upstream: http://127.0.0.1:8888\n    tls: {cert: open-cert.pem, key: open-key.pem}\n`, storage, clock);
  await assert.rejects(m.start(), /no usable certificate/);
  const failure = events.filter((e) => e.event === "cert.load_failed").pop();
  assert.match(JSON.stringify(failure?.fields), /open-key\.pem: the private key is readable by every user \(mode 644\); run chmod 600 /);
  m.stop();
});
