import { Resolver } from "node:dns/promises";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { request } from "undici";
import { freePort, startProcess, waitFor, type TestProcess } from "./processes.js";
import { trustingAgent } from "./notebook-client.js";
import { createTestCa } from "./test-ca.js";
import { requireTool } from "./tools.js";

/** Let's Encrypt's ACME test server with its DNS stand-in, on loopback, started by the test. */
export interface Pebble {
  /** The ACME directory URL, e.g. https://127.0.0.1:14000/dir */
  readonly directoryUrl: string;
  /** PEM of the CA that signed pebble's own HTTPS certificate: pass it as NODE_EXTRA_CA_CERTS. */
  readonly httpsCaPath: string;
  readonly httpsCaPem: string;
  /** pebble's own HTTPS leaf (localhost, 127.0.0.1), for fixtures that stand in front of it. */
  readonly httpsLeaf: { readonly certPem: string; readonly keyPem: string };
  readonly process: TestProcess;
  /** Resolves names with the DNS pebble asks (challtestsrv's, where every name is 127.0.0.1 unless setAddresses says otherwise). */
  resolveHost(host: string): Promise<string[]>;
  /** Makes challtestsrv answer `host` with these IPv4 addresses. */
  setAddresses(host: string, ipv4: readonly string[]): Promise<void>;
  /** The root that signs the certificates pebble issues (new at every start). */
  issuingRoot(): Promise<string>;
  /** The DNS server pebble asks (host:port): a gateway that resolves names as the CA does asks it too. */
  readonly dnsServer: string;
  /** Stops pebble and starts it again on the same ports: it forgets every account, order and its roots. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Where pebble sends HTTP-01 validations: the gateway's http port. */
  readonly httpPort: number;
  /** Where pebble sends TLS-ALPN-01 validations: the gateway's https port. */
  readonly tlsPort: number;
  /** Extra PEBBLE_* fault-injection variables. */
  readonly env?: Record<string, string>;
  /**
   * A DNS server (host:port) pebble asks instead of starting its own challtestsrv: a real
   * authoritative server (test/support/bind9.ts) for DNS-01. setAddresses is not available then.
   */
  readonly dnsServer?: string;
  /** External Account Binding keys (kid → base64url HMAC key): when given, pebble requires EAB for new accounts, as ZeroSSL does. */
  readonly eabKeys?: Record<string, string>;
}

export async function startPebble(dir: string, options: PebbleOptions): Promise<Pebble> {
  const pebbleBin = requireTool("/usr/bin/pebble", "pebble");
  const challtestsrv = requireTool("/usr/bin/pebble-challtestsrv", "pebble");
  mkdirSync(dir, { recursive: true });
  const ca = createTestCa(dir);
  const tls = ca.issue("pebble", ["localhost", "127.0.0.1"]);
  const [port, managementPort, dnsPort, dnsManagementPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);

  // Every name resolves to 127.0.0.1 (and no IPv6, or pebble dials [::1] first).
  const dns = options.dnsServer ? undefined : startProcess(challtestsrv, ["-management", `127.0.0.1:${dnsManagementPort}`, "-dns01", `127.0.0.1:${dnsPort}`, "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
  const dnsServer = options.dnsServer ?? `127.0.0.1:${dnsPort}`;
  const config = join(dir, "pebble-config.json");
  writeFileSync(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: tls.certPath,
      privateKey: tls.keyPath,
      httpPort: options.httpPort,
      tlsPort: options.tlsPort,
      ocspResponderURL: "",
      externalAccountBindingRequired: options.eabKeys !== undefined,
      ...(options.eabKeys ? { externalAccountMACKeys: options.eabKeys } : {}),
    },
  }));
  const env = { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0", ...options.env };
  const agent = trustingAgent(ca.certPem);
  const directoryUrl = `https://127.0.0.1:${port}/dir`;
  const start = async (): Promise<TestProcess> => {
    // "-strict=false" with "=": "-strict false" silently drops every flag after it.
    const started = startProcess(pebbleBin, ["-config", config, "-dnsserver", dnsServer, "-strict=false"], { env });
    await waitFor(`pebble's directory (output: ${started.output().slice(-500)})`, async () => {
      if (started.child.exitCode !== null) throw new Error(`pebble exited: ${started.output()}`);
      const res = await request(directoryUrl, { dispatcher: agent });
      await res.body.text();
      return res.statusCode === 200 ? true : undefined;
    }, 20_000, 100);
    return started;
  };
  let pebble = await start();
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([dnsServer]);
  return {
    directoryUrl,
    dnsServer,
    async resolveHost(host) {
      const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
      const addresses = [v4, v6].flatMap((r) => (r.status === "fulfilled" ? r.value : []));
      if (addresses.length === 0 && v4.status === "rejected") throw v4.reason;
      return addresses;
    },
    async setAddresses(host, ipv4) {
      if (!dns) throw new Error("setAddresses needs pebble's own challtestsrv: start pebble without dnsServer");
      // /add-a adds to what the name had: clear it first, so a name can be pointed back.
      for (const [path, body] of [["/clear-a", { host }], ["/add-a", { host, addresses: ipv4 }]] as const) {
        const res = await request(`http://127.0.0.1:${dnsManagementPort}${path}`, { method: "POST", body: JSON.stringify(body) });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`challtestsrv ${path} answered ${res.statusCode}`);
      }
    },
    httpsCaPath: ca.certPath,
    httpsCaPem: ca.certPem,
    httpsLeaf: { certPem: tls.certPem, keyPem: tls.keyPem },
    get process() {
      return pebble;
    },
    async issuingRoot() {
      const res = await request(`https://127.0.0.1:${managementPort}/roots/0`, { dispatcher: agent });
      return res.body.text();
    },
    async restart() {
      await pebble.stop();
      pebble = await start();
    },
    async stop() {
      await Promise.all([pebble.stop(), dns?.stop()]);
    },
  };
}

/** What a describe block that orders from one pebble has: set in its `before`, so read them inside tests. */
export interface PebbleSuite {
  /** A temporary folder for the suite's configs and storage, removed after it. */
  dir: string;
  pebble: Pebble;
  /** Free ports for the gateway, where pebble validates HTTP-01 and TLS-ALPN-01. */
  ports: { https: number; http: number };
  /** The environment `gateway` runs with to trust pebble's HTTPS. */
  env: Record<string, string>;
}

/** Starts pebble before the describe block it is called in (temp folder named `prefix`…) and stops it after. */
export function pebbleSuite(prefix: string): PebbleSuite {
  const suite = {} as PebbleSuite;
  before(async () => {
    suite.dir = mkdtempSync(join(tmpdir(), prefix));
    suite.ports = { https: await freePort(), http: await freePort() };
    suite.pebble = await startPebble(join(suite.dir, "pebble"), { httpPort: suite.ports.http, tlsPort: suite.ports.https });
    suite.env = { NODE_EXTRA_CA_CERTS: suite.pebble.httpsCaPath };
  });
  after(async () => {
    await suite.pebble?.stop();
    rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}
