import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { parseConfig } from "../config/load-config.js";
import type { SiteConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { parseBundle, type CertificateBundle } from "./certificate-bundle.js";
import type { Logger } from "../platform/logger.js";
import { CertManager } from "./cert-manager.js";
import { FileCertStore } from "./cert-store.js";
import { makeCaCertificate, signCertificate } from "./forge-certificates.js";
import type { IssuedBundle, IssueRequest, Issuer } from "./issuer.js";
import { DEFAULT_LOCK_TIMING, type IssuingLock } from "./issuing-lock.js";
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

/** A FakeClock whose sleeps end after 10 ms, so the renewal loop runs pass after pass until stopped. */
class RacingClock extends FakeClock {
  override sleep(_ms: number, signal?: AbortSignal): Promise<void> {
    return sleep(10, undefined, { signal });
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
  assert.deepEqual(issued.names, ["localhost", "notebook.lan", "127.0.0.1", "::1"]);
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
  assert.match(JSON.stringify(failure?.fields), /open-key\.pem is open to other users \(mode 644\), and it holds a secret; run chmod 600 /);
  m.stop();
});

it("the renewal loop logs a failed pass (state file unreadable, lock held past its wait), keeps serving and retries", async () => {
  const storage = join(dir, "loop");
  const clock = new RacingClock(new Date());
  const config = parseConfig("sites:\n  - host: localhost\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", join(dir, "gateway.yaml"), "gateway.yaml");
  const store = new FileCertStore(storage, clock, { ...DEFAULT_LOCK_TIMING, waitMs: 300 });
  const issuer = new LocalCaIssuer(store, clock, logger);
  const m = new CertManager(config.sites, store, { internal: issuer, acme: issuer }, () => undefined, clock, logger);
  await m.start();
  const serving = m.servingCertificates()[0]?.[1].fingerprint;
  clock.current = new Date(clock.current.getTime() + 4 * DAY); // due: past half of the 7-day lifetime
  writeFileSync(join(storage, "state", "localhost.json"), "{ torn");
  // A live holder (cron's renew in a slow order): its heartbeat is fresh by the clock that judges it.
  writeFileSync(join(storage, "locks", "localhost.lock"), "0123456789abcdef01234567 pid 1 on another-container since 2026-01-01T00:00:00.000Z\n");
  utimesSync(join(storage, "locks", "localhost.lock"), clock.current, clock.current);
  const rejections: unknown[] = [];
  const onRejection = (err: unknown): number => rejections.push(err);
  process.on("unhandledRejection", onRejection);
  const seen = events.length;
  const failures = (): Array<Record<string, unknown>> => events.slice(seen).filter((e) => e.event === "cert.renew_failed").map((e) => e.fields as Record<string, unknown>);
  const until = async (what: string, done: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !done(); i++) await sleep(25);
    assert.ok(done(), `${what}; events: ${JSON.stringify(events.slice(seen))}; rejections: ${rejections.map(String).join(", ")}`);
  };
  try {
    m.startRenewing();
    await until("the unreadable state file is logged as cert.renew_failed", () => failures().some((f) => /localhost\.json/.test(String(f.error))));
    await until("the lock held past its wait is logged as cert.renew_failed", () => failures().some((f) => /another gateway process/.test(String(f.error))));
    assert.ok(failures().every((f) => f.keeps_serving === serving), "each failure says the old certificate keeps serving");
    assert.equal(m.servingCertificates()[0]?.[1].fingerprint, serving);
    rmSync(join(storage, "locks", "localhost.lock"));
    await until("the loop retries and renews once the lock is free", () => events.slice(seen).some((e) => e.event === "cert.renewed"));
    assert.deepEqual(rejections, []);
    m.stop();
    writeFileSync(join(storage, "state", "localhost.json"), "{ torn");
    assert.match(String((await m.status())[0]?.state.lastError), /localhost\.json: not valid JSON.*delete it/, "status shows the torn state file with its fix");
  } finally {
    m.stop();
    process.off("unhandledRejection", onRejection);
  }
});

/** A CA at the unit's edge that issues 160-hour certificates (Let's Encrypt's shortlived profile) and offers no ARI, recording what it was asked. */
class ShortLivedCa implements Issuer {
  readonly description = "short-lived test CA";
  readonly requests: IssueRequest[] = [];
  private readonly ca = makeCaCertificate("short-lived test CA", new Date());
  constructor(private readonly clock: Clock) {}
  async obtain(request: IssueRequest): Promise<IssuedBundle> {
    this.requests.push(request);
    const ca = await this.ca;
    // signCertificate backdates notBefore by an hour: 159 hours ahead make a 160-hour lifetime.
    const { certPem, keyPem } = await signCertificate(ca, request.hosts[0] ?? "", this.clock.now(), 159 * 3600_000, [{ name: "subjectAltName", altNames: request.hosts.map((ip) => ({ type: 7, ip })) }]);
    return { ...parseBundle(certPem + ca.certPem, keyPem, "short-lived test CA"), issuedBy: this.description };
  }
  async renewalWindow(): Promise<null> {
    return null;
  }
}

it("an IP-address site's 160-hour certificate renews at half-life (80 hours), in renewDue (cron's renew) and in serve's loop alike", async () => {
  const storage = join(dir, "short-lived");
  const clock = new RacingClock(new Date(Date.UTC(2026, 0, 1)));
  const HOUR = 3600_000;
  const config = parseConfig("acme: { profile: shortlived }\nsites:\n  - host: 203.0.113.7\n    upstream: http://127.0.0.1:8888\n", join(dir, "gateway.yaml"), "gateway.yaml");
  const store = new FileCertStore(storage);
  const ca = new ShortLivedCa(clock);
  const m = new CertManager(config.sites, store, { internal: new LocalCaIssuer(store, clock, logger), acme: ca }, () => undefined, clock, logger);
  try {
    await store.init();
    const [first] = await m.renewDue();
    assert.equal(first?.kind, "renewed");
    assert.deepEqual(ca.requests[0], { hosts: ["203.0.113.7"], replacing: null, profile: "shortlived" });
    // Half of the real lifetime (notBefore is backdated an hour, as Let's Encrypt does), not a fixed number of days.
    const halfLife = async (): Promise<Date> => {
      const status = (await m.status())[0];
      const bundle = status?.bundle;
      assert.ok(bundle);
      assert.equal(bundle.notAfter.getTime() - bundle.notBefore.getTime(), 160 * HOUR);
      assert.equal(status?.renewAt?.getTime(), bundle.notBefore.getTime() + 80 * HOUR);
      return status.renewAt;
    };
    const due = await halfLife();
    clock.current = new Date(due.getTime() - 1);
    const notYet = (await m.renewDue())[0];
    assert.equal(notYet?.kind === "fresh" && notYet.renewAt.getTime(), due.getTime());
    clock.current = due;
    assert.equal((await m.renewDue())[0]?.kind, "renewed");
    assert.equal(ca.requests.length, 2);

    // serve's loop renews the second certificate at its own half-life.
    const nextDue = await halfLife();
    await m.start();
    const seen = events.length;
    m.startRenewing();
    clock.current = new Date(nextDue.getTime() - 1);
    await sleep(100);
    assert.equal(ca.requests.length, 2, "nothing due yet");
    clock.current = nextDue;
    for (let i = 0; i < 200 && !events.slice(seen).some((e) => e.event === "cert.renewed"); i++) await sleep(25);
    assert.equal(ca.requests.length, 3, JSON.stringify(events.slice(seen)));
    assert.equal(ca.requests[2]?.replacing?.notAfter.getTime(), nextDue.getTime() + 80 * HOUR, "replacing the second certificate");
  } finally {
    m.stop();
  }
});

it("a renewal whose lock another process took over meanwhile (its heartbeat looked stale) installs nothing, and leaves the other's lock", async () => {
  const storage = join(dir, "lost");
  const clock = new FakeClock(new Date());
  const config = parseConfig("sites:\n  - host: localhost\n    upstream: http://127.0.0.1:8888\n    tls: internal\n", join(dir, "gateway.yaml"), "gateway.yaml");
  const store = new FileCertStore(storage, clock);
  const local = new LocalCaIssuer(store, clock, logger);
  const m = new CertManager(config.sites, store, { internal: local, acme: local }, () => undefined, clock, logger);
  await m.start();
  const installed = readFileSync(store.bundlePath("localhost"), "utf8");
  let other: IssuingLock | undefined;
  // The order outlasts the staleness bound without a heartbeat (a frozen process): another takes the lock over.
  const slow: Issuer = {
    description: "local CA, frozen mid-order",
    obtain: async (request) => {
      clock.current = new Date(clock.current.getTime() + DEFAULT_LOCK_TIMING.staleMs + 1_000);
      other = await new FileCertStore(storage, clock, { ...DEFAULT_LOCK_TIMING, settleMs: 10 }).lock("localhost");
      return local.obtain(request);
    },
    renewalWindow: async () => null,
  };
  const frozen = new CertManager(config.sites, store, { internal: slow, acme: slow }, () => undefined, clock, logger);
  const [outcome] = await frozen.renewDue({ force: true });
  assert.equal(outcome?.kind, "failed");
  assert.match(outcome?.kind === "failed" ? outcome.error : "", /^localhost: another gateway process took the issuing lock over \(pid \d+ on .*\) because this one's heartbeat was over 15 s old; the certificate this process obtained is not installed$/);
  assert.equal(readFileSync(store.bundlePath("localhost"), "utf8"), installed, "the certificate in storage is the one from before");
  await other?.assertHeld(); // the failed renewal's release left the new holder's lock in place
  await other?.release();
  m.stop();
});
